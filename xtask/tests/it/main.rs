mod fixture_index;
mod support;
