//! crosstalk: an API regression and fuzz testing harness that fails the
//! moment one patient's response carries another patient's data.
//!
//! Data flows through one module per concept:
//!
//! ```text
//! scenario ─parse/check─► plan ─► executor ──transport──► target API
//!                          ▲         │ sends                    │
//!            fuzzer (mutates)        ▼                          │
//!                               Exchange (request, response, observer)
//!                                    │
//!      judges, in order: handover ─ session ─ capture ─ grant ─ status ─
//!                        body ─ expect ─ stop ─ contract ─ taint ─ trace;
//!                        per batch: public, then leak ─ access ─ witness;
//!                        witness: tamper around writes
//!                                    │        ▲
//!                                  world ◄────┘  (ledger: who owns what)
//!                                    │
//!                                findings ─► shrinker ─► report
//! ```
//!
//! [`scenario`] reads TOML files and [`plan`] checks and resolves them.
//! The [`executor`] only drives: instances, batches in lockstep,
//! cancellation, sending requests built by [`request`] (holes filled by the
//! [`resolver`]) through a [`transport`]. Each answered request becomes a
//! [`judge::Exchange`] and goes through the [`judge`] pipeline, which updates
//! the [`world`] (captures, cookies, grants, the ledger of who owns what) and
//! states findings; the [`oracle`] finds [`canary`] markers and owned
//! identifiers where they do not belong, and the [`witness`] decides which
//! of an owner's own reads the executor sends again around a write aimed
//! at it, and whether its data changed (`tamper`). Who is whom (which
//! identity a response went to, which instances are one account) is
//! decided from evidence in [`identity`]; whether the judges could see at
//! all is each scenario's [`health`], and whether they would see a leak on
//! this API at all is what a [`self_test`] plants defects to prove. [`findings`]
//! buckets and persists
//! what is found, [`report`] tells people and CI systems, and [`html`]
//! shows it on one page. The [`fuzzer`]
//! writes programs over a scenario's steps, the [`shrinker`] reduces the
//! ones that leak or tamper. [`init`] writes a starter suite from an
//! OpenAPI document, which [`openapi`] reads (and [`coverage`] measures a
//! run against). A [`session`] (`Run`, `Fuzz`, `Replay`, `Merge`) owns a
//! whole command, its reports and its exit code; the binary only parses
//! flags. A run spread over machines is one run in N [`shard`]s, which
//! `Merge` makes one verdict of.
//! Nothing here knows any particular API: paths, fields and credentials all
//! come from scenario files.

pub mod baseline;
pub mod canary;
pub mod contract;
pub mod coverage;
pub mod embedded;
pub mod executor;
pub mod findings;
pub mod fuzzer;
pub mod health;
pub mod html;
pub mod identity;
pub mod init;
pub mod judge;
pub mod openapi;
pub mod oracle;
pub mod plan;
pub mod probe;
pub mod report;
pub mod reproduction;
pub mod request;
pub mod resolver;
pub mod safety;
pub mod scenario;
pub mod self_test;
pub mod session;
pub mod shard;
pub mod shrinker;
pub mod template;
pub mod texts;
pub mod transport;
pub mod witness;
pub mod world;

pub use session::{Exit, Fuzz, Replay, Run};
