//! The library part of the tool, which the binary's commands and the integration tests share:
//! pure models, the wheelhouse on disk, and the external tools. See docs/ARCHITECTURE.md.

pub mod model;
pub mod parallel;
pub mod tools;
pub mod ui;
pub mod wheelhouse;
