mod common;
pub mod demo;
pub mod export;
pub mod inspect;
mod plan;
pub mod quantize;
