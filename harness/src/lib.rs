//! crosstalk: an API regression and fuzz testing harness that fails the
//! moment one patient's response carries another patient's data.
//!
//! Data flows through one module per concept:
//!
//! ```text
//! scenario ─► plan ─► executor ──transport──► target API
//!                        │                        │
//!                      ledger ◄── captures ◄── responses
//!                        └──────► oracle ◄────────┘
//!                                   │
//!                               findings ─► report
//! ```
//!
//! [`scenario`] reads TOML files, [`plan`] checks and resolves them,
//! [`executor`] drives many instances concurrently through a [`transport`],
//! [`ledger`] knows who owns what, [`oracle`] finds [`canary`] markers and
//! owned identifiers where they do not belong, [`findings`] buckets and
//! persists what it finds, and [`report`] tells people and CI systems.
//! Nothing here knows any particular API: paths, fields and credentials all
//! come from scenario files.

pub mod baseline;
pub mod canary;
pub mod contract;
pub mod embedded;
pub mod executor;
pub mod findings;
pub mod fuzzer;
pub mod ledger;
pub mod oracle;
pub mod plan;
pub mod report;
pub mod safety;
pub mod scenario;
pub mod shrinker;
pub mod template;
pub mod transport;
