//! Tests of the timer table.
