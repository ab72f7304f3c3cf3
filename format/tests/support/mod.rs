pub mod mutate;
pub mod rng;
pub mod vectors;
