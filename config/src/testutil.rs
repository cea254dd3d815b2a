//! A small schema shaped like the edge's, shared by the unit tests.

use crate::schema::{OptionSpec, Schema};

pub(crate) static OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "community",
        "name",
        "Name of the community (virtual network) to join.",
    ),
    OptionSpec::new(
        "community",
        "supernode",
        "Supernode to register with, as host or host:port. Give it once per supernode; the \
         edge keeps all of them and fails over between them.",
    )
    .repeatable(),
    OptionSpec::new("community", "key", "Pre-shared community key.").secret(),
    OptionSpec::new("tuntap", "mtu", "MTU of the virtual interface.").default("1400"),
    OptionSpec::new(
        "tuntap",
        "address",
        "IPv4 address of the interface, e.g. 10.0.0.2/24.",
    ),
    OptionSpec::new("tuntap", "up", "Bring the interface up after creating it.").default("yes"),
    OptionSpec::new("tuntap", "route", "Extra route through the VPN.")
        .repeatable()
        .default("10.0.0.0/8"),
    OptionSpec::new(
        "logging",
        "level",
        "Log level: error, warn, info, debug or trace.",
    )
    .default("info"),
    OptionSpec::new("logging", "prefix", "Text put before each log line.").default(" weft # "),
];

pub(crate) static SCHEMA: Schema = Schema {
    program: "weft-test",
    options: OPTIONS,
};
