//! The viewer's panels. Each reads the [`State`](crate::app::State) from
//! the context and lays out what [`model`](crate::model) computed.

pub mod checks;
pub mod compare;
pub mod detail;
pub mod gauge;
pub mod histogram;
pub mod layers;
pub mod table;
