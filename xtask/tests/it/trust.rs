//! Placeholder, filled by the Trust issue's work.
