mod create_wheelhouse;
mod fixture_index;
mod live;
mod pack_verify;
mod support;
