mod create_wheelhouse;
mod fixture_index;
mod support;
