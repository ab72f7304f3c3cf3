pub mod mutate;
pub mod vectors;
