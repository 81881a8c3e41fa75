pub mod bad;
