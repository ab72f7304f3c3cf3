mod common;
pub mod demo;
pub mod export;
pub mod inspect;
pub mod quantize;
