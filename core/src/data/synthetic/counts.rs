//! How many objects of each kind a scene holds, counted by `populate` as it
//! places them (the tests read them to check that scenes vary).

/// How many objects of each kind a scene holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub cars: usize,
    pub trucks: usize,
    pub buses: usize,
    pub people: usize,
    pub riders: usize,
    pub bicycles: usize,
    pub trees: usize,
    pub poles: usize,
    pub lights: usize,
    pub signs: usize,
    pub buildings: usize,
    pub barriers: usize,
}

// Only the tests read the counts (to check that scenes vary).
#[cfg_attr(not(test), allow(dead_code))]
impl Counts {
    /// Vehicles, people and riders: the "things" of the scene.
    pub fn things(&self) -> usize {
        self.cars + self.trucks + self.buses + self.people + self.riders + self.bicycles
    }
}
