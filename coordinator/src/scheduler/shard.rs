//! Shard assignment: one pool's images split among the live workers of its task.

use std::collections::BTreeMap;

use super::WorkerId;

/// Splits `images` among `workers`, strided: with the images sorted and the
/// workers sorted by id, the k-th worker gets images k, k+w, k+2w, … of the
/// w workers.
///
/// - every image goes to exactly one worker (duplicate images and duplicate
///   workers count once);
/// - shard sizes differ by at most 1 (lower ids get the extra images);
/// - the result depends only on the sets of images and workers, not on their
///   order;
/// - every worker has an entry, empty when there are fewer images than
///   workers; with no workers the result is empty and nothing is assigned.
///
/// Strided rather than contiguous because image indices follow the sorted
/// image ids, which group images by city: a contiguous shard would be a few
/// cities, a strided one is a spread of the whole pool, so every worker's
/// gradient estimates the same distribution. When membership changes most
/// images change owner; that is cheap since every worker reads the whole
/// dataset and only samples from its shard.
pub fn assign(images: &[usize], workers: &[WorkerId]) -> BTreeMap<WorkerId, Vec<usize>> {
    let mut workers = workers.to_vec();
    workers.sort_unstable();
    workers.dedup();
    let mut images = images.to_vec();
    images.sort_unstable();
    images.dedup();
    let w = workers.len();
    workers.iter().enumerate().map(|(k, &id)| (id, images.iter().skip(k).step_by(w).copied().collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ids(list: &[u64]) -> Vec<WorkerId> {
        list.iter().map(|&i| WorkerId(i)).collect()
    }

    #[test]
    fn shards_are_strided_in_worker_id_order() {
        let a = assign(&[0, 1, 2, 3, 4, 5, 6], &ids(&[9, 4]));
        assert_eq!(a[&WorkerId(4)], [0, 2, 4, 6]);
        assert_eq!(a[&WorkerId(9)], [1, 3, 5]);
    }

    #[test]
    fn workers_beyond_the_number_of_images_get_empty_shards() {
        let a = assign(&[10, 20], &ids(&[1, 2, 3]));
        assert_eq!(a[&WorkerId(1)], [10]);
        assert_eq!(a[&WorkerId(2)], [20]);
        assert!(a[&WorkerId(3)].is_empty());
    }

    #[test]
    fn no_workers_means_no_shards() {
        assert!(assign(&[1, 2, 3], &[]).is_empty());
        assert_eq!(assign(&[], &ids(&[1])), BTreeMap::from([(WorkerId(1), vec![])]));
    }

    /// A pool's images and the workers to split them among.
    type Inputs = (Vec<usize>, Vec<WorkerId>);

    fn images_and_workers() -> impl Strategy<Value = Inputs> {
        (prop::collection::vec(0usize..400, 0..300), prop::collection::vec(0u64..40, 1..20))
            .prop_map(|(images, workers)| (images, workers.into_iter().map(WorkerId).collect()))
    }

    /// The same images and workers twice, the second time shuffled.
    fn reordered() -> impl Strategy<Value = (Inputs, Inputs)> {
        images_and_workers().prop_flat_map(|(images, workers)| {
            let original = (images.clone(), workers.clone());
            (Just(original), (Just(images).prop_shuffle(), Just(workers).prop_shuffle()))
        })
    }

    proptest! {
        #[test]
        fn every_image_goes_to_exactly_one_worker((images, workers) in images_and_workers()) {
            let a = assign(&images, &workers);
            let mut assigned: Vec<usize> = a.values().flatten().copied().collect();
            assigned.sort_unstable();
            let mut expected = images.clone();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(assigned, expected);
            prop_assert_eq!(a.keys().copied().collect::<BTreeSet<_>>(), workers.iter().copied().collect());
        }

        #[test]
        fn shard_sizes_differ_by_at_most_one((images, workers) in images_and_workers()) {
            let a = assign(&images, &workers);
            let sizes: Vec<usize> = a.values().map(Vec::len).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }

        #[test]
        fn the_assignment_ignores_the_order_of_its_inputs(((images, workers), (images2, workers2)) in reordered()) {
            prop_assert_eq!(assign(&images, &workers), assign(&images2, &workers2));
        }
    }
}
