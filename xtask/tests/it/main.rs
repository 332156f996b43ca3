mod containers;
mod create_wheelhouse;
mod dist;
mod fixture_index;
mod live;
mod pack_verify;
mod supply_chain;
mod support;
