//! `init` end to end (placeholder: filled by the init work).
