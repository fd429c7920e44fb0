//! Reports: what happened to every row, and the CSV files the library writes.

pub(crate) mod csv_out;

pub use csv_out::{neutralize_cell, restore_cell};
