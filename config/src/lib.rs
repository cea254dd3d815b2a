//! Configuration layer shared by `weft-edge` and `weft-supernode`.
//!
//! Settings come from four places, strongest first: `-O section.option=value` on the command line,
//! environment variables the daemon maps explicitly (e.g. `WEFT_KEY`), an n3n-style INI file
//! (`/etc/weft/<session>.conf`), and the defaults in the daemon's [`Schema`].
//! Every value remembers where it came from ([`Origin`]) so that an error can point at the exact
//! file line or command-line argument, and options marked secret are never echoed back.
//!
//! Module map (one job each):
//! - [`schema`]: the option table a daemon declares, lookups and "did you mean" suggestions.
//! - `ini`: the line-tracking INI reader (hand-written because `rust-ini` drops line numbers).
//! - `overrides`: splitting `-O section.option=value` arguments.
//! - [`config`]: layering file, environment, command line and defaults into a [`Config`].
//! - `typed`: typed access (`parse`, `require`, `parse_bool`, ...) with precise errors.
//! - [`session`]: turning `start <session|path>` into a session name and file path.
//! - `help`: the `help config` text; `dump`: the effective configuration, secrets hidden.
//! - [`error`]: [`ConfigError`] and [`Origin`]; `text`: escaping, quoting and wrapping helpers.
#![forbid(unsafe_code)]
// ConfigError carries origins and names by value so messages are self-contained; it is built at
// most a few times per process start, so its size (clippy's result_large_err) does not matter.
#![allow(clippy::result_large_err)]

pub mod config;
mod dump;
pub mod error;
mod help;
mod ini;
mod overrides;
pub mod schema;
pub mod session;
mod text;
mod typed;

#[cfg(test)]
mod testutil;

pub use config::{Config, Setting};
pub use error::{ConfigError, Origin};
pub use help::help_text;
pub use schema::{OptionSpec, Schema};
pub use session::{resolve_start_arg, validate_session_name};
