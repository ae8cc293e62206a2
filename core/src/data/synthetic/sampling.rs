//! Discrete draws shared by the scene's parts: a weighted choice among a few
//! options (how many lanes, which paving, which pole colour, how many signs).

use rand::Rng;

/// A choice among `weights.len()` options with the given relative weights.
pub(crate) fn pick(rng: &mut impl Rng, weights: &[f32]) -> usize {
    let total: f32 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn a_weighted_pick_follows_the_weights_and_never_picks_a_zero_weight() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut hits = [0usize; 3];
        for _ in 0..4000 {
            hits[pick(&mut rng, &[3.0, 0.0, 1.0])] += 1;
        }
        assert_eq!(hits[1], 0, "{hits:?}");
        let share = hits[0] as f32 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{hits:?}");
    }
}
