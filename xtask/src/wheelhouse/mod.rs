//! The wheelhouse on disk: where each file is, the archive format, checking bytes against the
//! manifest, and replacing files and directories whole. File system only: nothing here starts a
//! process or touches the network.

pub mod archive;
pub mod delta;
pub mod files;
pub mod integrity;
pub mod layout;
pub mod partial;
pub mod simple_index;
pub mod swap;
