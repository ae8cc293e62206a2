//! Cityscapes label definitions, as in cityscapesScripts' `labels.py`.
//!
//! Label images store *ids* (0..=33). Training uses either the 19 *train ids*
//! (all other ids ignored) or the 7 *categories* (flat, construction, object,
//! nature, sky, human, vehicle; `void` ignored). Ignored pixels are [`IGNORE`].

use serde::{Deserialize, Serialize};

/// The label value that losses and metrics skip.
pub const IGNORE: u8 = 255;

/// One row of the Cityscapes label table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub name: &'static str,
    pub id: u8,
    /// 0..=18, or [`IGNORE`].
    pub train_id: u8,
    pub category: &'static str,
    /// 0 (void) ..= 7 (vehicle).
    pub category_id: u8,
    pub color: [u8; 3],
}

const fn l(name: &'static str, id: u8, train_id: u8, category: &'static str, category_id: u8, color: [u8; 3]) -> Label {
    Label { name, id, train_id, category, category_id, color }
}

/// Every Cityscapes label with an id that can appear in a `labelIds` image.
pub const LABELS: [Label; 34] = [
    l("unlabeled", 0, IGNORE, "void", 0, [0, 0, 0]),
    l("ego vehicle", 1, IGNORE, "void", 0, [0, 0, 0]),
    l("rectification border", 2, IGNORE, "void", 0, [0, 0, 0]),
    l("out of roi", 3, IGNORE, "void", 0, [0, 0, 0]),
    l("static", 4, IGNORE, "void", 0, [0, 0, 0]),
    l("dynamic", 5, IGNORE, "void", 0, [111, 74, 0]),
    l("ground", 6, IGNORE, "void", 0, [81, 0, 81]),
    l("road", 7, 0, "flat", 1, [128, 64, 128]),
    l("sidewalk", 8, 1, "flat", 1, [244, 35, 232]),
    l("parking", 9, IGNORE, "flat", 1, [250, 170, 160]),
    l("rail track", 10, IGNORE, "flat", 1, [230, 150, 140]),
    l("building", 11, 2, "construction", 2, [70, 70, 70]),
    l("wall", 12, 3, "construction", 2, [102, 102, 156]),
    l("fence", 13, 4, "construction", 2, [190, 153, 153]),
    l("guard rail", 14, IGNORE, "construction", 2, [180, 165, 180]),
    l("bridge", 15, IGNORE, "construction", 2, [150, 100, 100]),
    l("tunnel", 16, IGNORE, "construction", 2, [150, 120, 90]),
    l("pole", 17, 5, "object", 3, [153, 153, 153]),
    l("polegroup", 18, IGNORE, "object", 3, [153, 153, 153]),
    l("traffic light", 19, 6, "object", 3, [250, 170, 30]),
    l("traffic sign", 20, 7, "object", 3, [220, 220, 0]),
    l("vegetation", 21, 8, "nature", 4, [107, 142, 35]),
    l("terrain", 22, 9, "nature", 4, [152, 251, 152]),
    l("sky", 23, 10, "sky", 5, [70, 130, 180]),
    l("person", 24, 11, "human", 6, [220, 20, 60]),
    l("rider", 25, 12, "human", 6, [255, 0, 0]),
    l("car", 26, 13, "vehicle", 7, [0, 0, 142]),
    l("truck", 27, 14, "vehicle", 7, [0, 0, 70]),
    l("bus", 28, 15, "vehicle", 7, [0, 60, 100]),
    l("caravan", 29, IGNORE, "vehicle", 7, [0, 0, 90]),
    l("trailer", 30, IGNORE, "vehicle", 7, [0, 0, 110]),
    l("train", 31, 16, "vehicle", 7, [0, 80, 100]),
    l("motorcycle", 32, 17, "vehicle", 7, [0, 0, 230]),
    l("bicycle", 33, 18, "vehicle", 7, [119, 11, 32]),
];

/// Names of the 7 categories, indexed by class (category id − 1).
pub const CATEGORY_NAMES: [&str; 7] = ["flat", "construction", "object", "nature", "sky", "human", "vehicle"];

/// Which class space the segmentation head predicts (config `data.classes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum LabelSet {
    /// The 19 Cityscapes train ids.
    TrainIds19,
    /// The 7 categories.
    Categories7,
}

impl LabelSet {
    pub fn num_classes(self) -> usize {
        match self {
            LabelSet::TrainIds19 => 19,
            LabelSet::Categories7 => 7,
        }
    }

    /// The class index of sky (train id 10, category 4): never any depth.
    pub fn sky_class(self) -> u8 {
        match self {
            LabelSet::TrainIds19 => 10,
            LabelSet::Categories7 => 4,
        }
    }

    /// Maps a Cityscapes id (as stored in `*_labelIds.png`) to a class index,
    /// or [`IGNORE`] for ids that are not trained (including unknown ids).
    pub fn class_of_id(self, id: u8) -> u8 {
        self.lut()[id as usize]
    }

    /// A 256-entry lookup table from id to class.
    pub fn lut(self) -> [u8; 256] {
        let mut lut = [IGNORE; 256];
        for label in LABELS.iter() {
            lut[label.id as usize] = match self {
                LabelSet::TrainIds19 => label.train_id,
                LabelSet::Categories7 if label.category_id == 0 => IGNORE,
                LabelSet::Categories7 => label.category_id - 1,
            };
        }
        lut
    }

    /// The class names, indexed by class.
    pub fn class_names(self) -> Vec<&'static str> {
        match self {
            LabelSet::TrainIds19 => {
                let mut names = vec![""; 19];
                for label in LABELS.iter().filter(|l| l.train_id != IGNORE) {
                    names[label.train_id as usize] = label.name;
                }
                names
            }
            LabelSet::Categories7 => CATEGORY_NAMES.to_vec(),
        }
    }

    /// The Cityscapes id written for a predicted class: the id of the train id
    /// itself, or for a category a representative id (flat → road,
    /// construction → building, object → pole, nature → vegetation, sky → sky,
    /// human → person, vehicle → car).
    pub fn id_of_class(self, class: u8) -> u8 {
        const CATEGORY_IDS: [u8; 7] = [7, 11, 17, 21, 23, 24, 26];
        match self {
            LabelSet::TrainIds19 => LABELS.iter().find(|l| l.train_id == class).map_or(0, |l| l.id),
            LabelSet::Categories7 => CATEGORY_IDS.get(class as usize).copied().unwrap_or(0),
        }
    }

    /// The palette colour of a class (the Cityscapes colour of its id).
    pub fn color_of_class(self, class: u8) -> [u8; 3] {
        if class == IGNORE {
            return [0, 0, 0];
        }
        LABELS[self.id_of_class(class) as usize].color
    }
}

impl TryFrom<u32> for LabelSet {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        match value {
            19 => Ok(LabelSet::TrainIds19),
            7 => Ok(LabelSet::Categories7),
            other => Err(format!("must be 19 or 7 (got {other})")),
        }
    }
}

impl From<LabelSet> for u32 {
    fn from(value: LabelSet) -> Self {
        value.num_classes() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_indexed_by_id() {
        for (index, label) in LABELS.iter().enumerate() {
            assert_eq!(label.id as usize, index, "{}", label.name);
        }
    }

    #[test]
    fn every_id_maps_to_its_train_id() {
        let expected: [u8; 34] = [
            255, 255, 255, 255, 255, 255, 255, 0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15, 255, 255, 16, 17, 18,
        ];
        for id in 0..34u8 {
            assert_eq!(LabelSet::TrainIds19.class_of_id(id), expected[id as usize], "id {id}");
        }
    }

    #[test]
    fn every_id_maps_to_its_category() {
        let expected: [u8; 34] = [
            255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6, 6,
            6, 6, 6,
        ];
        for id in 0..34u8 {
            assert_eq!(LabelSet::Categories7.class_of_id(id), expected[id as usize], "id {id}");
        }
    }

    #[test]
    fn ids_outside_the_table_are_ignored() {
        for id in 34..=255u8 {
            assert_eq!(LabelSet::TrainIds19.class_of_id(id), IGNORE);
            assert_eq!(LabelSet::Categories7.class_of_id(id), IGNORE);
        }
    }

    #[test]
    fn each_train_id_is_used_by_exactly_one_id() {
        for class in 0..19u8 {
            let n = LABELS.iter().filter(|l| l.train_id == class).count();
            assert_eq!(n, 1, "train id {class}");
        }
    }

    #[test]
    fn class_to_id_to_class_is_the_identity() {
        for set in [LabelSet::TrainIds19, LabelSet::Categories7] {
            for class in 0..set.num_classes() as u8 {
                assert_eq!(set.class_of_id(set.id_of_class(class)), class, "{set:?} {class}");
            }
        }
    }

    #[test]
    fn class_names_have_one_entry_per_class() {
        assert_eq!(LabelSet::TrainIds19.class_names()[0], "road");
        assert_eq!(LabelSet::TrainIds19.class_names()[18], "bicycle");
        assert_eq!(LabelSet::Categories7.class_names().len(), 7);
    }

    #[test]
    fn only_7_and_19_are_accepted_as_class_counts() {
        assert!(LabelSet::try_from(19).is_ok());
        assert!(LabelSet::try_from(7).is_ok());
        assert!(LabelSet::try_from(8).unwrap_err().contains("got 8"));
    }
}
