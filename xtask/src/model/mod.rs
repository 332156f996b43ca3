//! The pure models: file formats, targets, requirements, resolutions and every text the tool
//! renders. They read no file, start no process and touch no network; what they need from disk
//! comes in as bytes or through a reader the caller passes. Each is tested without pip.

pub mod audit;
pub mod audit_render;
pub mod compose;
pub mod delta;
pub mod diff;
pub mod digest;
pub mod dockerfile;
pub mod http_auth;
pub mod install_script;
pub mod kubernetes;
pub mod kubernetes_serve;
pub mod lockfile;
pub mod manifest;
pub mod metrics;
pub mod osv;
pub mod paths;
pub mod project_scan;
pub mod pylock;
pub mod pylock_render;
pub mod pyproject;
pub mod redact;
pub mod requirements;
pub mod resolution;
pub mod sbom;
pub mod serving;
pub mod shell;
pub mod simple_index;
pub mod staleness;
pub mod target;
pub mod untrusted;
pub mod uvlock;
pub mod wheel_name;
pub mod wheelhouse_diff;
