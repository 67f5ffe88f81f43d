//! Rule tests: replay fixture findings through rules and compare the plans with what each
//! case expects.

pub mod case;
pub mod report;
pub mod run;

pub use run::{Report, run};
