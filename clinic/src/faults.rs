//! The fault catalog: real-world patient-data leaks, one named switch each.
//!
//! A fault is never a `leak()` bolted onto a handler. Each one is a single
//! decision point *inside* the code path where a developer chose between the
//! right line and a plausible wrong one; [`Faults::has`] picks the wrong one.
//! Grep for `Fault::` to see every such line next to its correct twin.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Environment variable read by `clinic serve` (and by anything embedding the
/// clinic that calls [`Faults::from_env`]): a comma-separated list of names.
pub const FAULTS_ENV: &str = "CLINIC_FAULTS";

macro_rules! catalog {
    ($($variant:ident => $name:literal, $description:literal;)*) => {
        /// One leak that can be switched on in the clinic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Fault {
            $(#[doc = $description] $variant,)*
        }

        impl Fault {
            /// Every fault, in catalog order.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];

            /// The name used on the command line and in `CLINIC_FAULTS`.
            pub fn name(self) -> &'static str {
                match self { $(Fault::$variant => $name,)* }
            }

            /// One line saying what goes wrong.
            pub fn description(self) -> &'static str {
                match self { $(Fault::$variant => $description,)* }
            }
        }
    };
}

catalog! {
    SwitchOwner => "switch-owner",
        "mid-call audio/video switch files the finished leg's recording under the clinician's current call instead of the consultation's patient";
    AppointmentIdor => "appointment-idor",
        "GET /v1/appointments/{id} loads the appointment by id without checking that it belongs to the caller";
    MediaIdor => "media-idor",
        "GET /v1/recordings/{id}/media streams a recording's media after checking only that the recording exists";
    ProfileCache => "profile-cache",
        "the GET /v1/me response cache is keyed by path alone, so a cached profile is served to the next user";
    StatusFilter => "status-filter",
        "appointment lists filtered by ?status= replace the caller condition instead of adding to it";
    CursorPagination => "cursor-pagination",
        "the profile's recordings pages after the first (?after=) drop the patient condition from the cursor query";
    ConflictMessage => "conflict-message",
        "a slot conflict's 409 message quotes the existing booking: its patient's name and reason";
    SwitchRace => "switch-race",
        "concurrent mode switches share one media hand-off slot per clinician, so a leg can be recorded with another call's transcript";
    MassAssignment => "mass-assignment",
        "PATCH /v1/me assigns any profile column, including id, so the update and the echoed profile hit another patient's record";
    ExportDemographics => "export-demographics",
        "GET /v1/me/export matches records by name and date of birth instead of patient id";
    AppointmentWriteIdor => "appointment-write-idor",
        "PATCH and DELETE /v1/appointments/{id} load the booking by id alone, so any patient can move or cancel another's (the answer is a 404 all the same)";
    EndByStranger => "end-by-stranger",
        "POST /v1/consultations/{id}/end shares the idle-timeout hang-up path, which checks that the call is live but not that the caller takes part in it";
    ProfileUpdateIdor => "profile-update-idor",
        "PATCH /v1/patients/{id} saves contact details to the patient in the path after checking only that the caller is a patient; it answers 204";
    PasswordChangeIdor => "password-change-idor",
        "POST /v1/me/password checks the caller's current password, then sets the new one on the account named by the form's patient_id";
    RecordingDeleteIdor => "recording-delete-idor",
        "DELETE /v1/recordings/{id} deletes any recording that exists, checking only that the caller is signed in";
    DocumentIdor => "document-idor",
        "GET /v1/patients/{patient_id}/documents/{document_id} checks that the caller is the path's patient, then loads the document by its id alone";
    DocumentWriteIdor => "document-write-idor",
        "PATCH /v1/patients/{patient_id}/documents/{document_id} checks that the caller is the path's patient, then saves to the document by its id alone; it answers 204";
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{name}`; known faults: {known}")]
pub struct UnknownFault {
    pub name: String,
    known: String,
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Fault::ALL
            .iter()
            .copied()
            .find(|fault| fault.name() == wanted)
            .ok_or_else(|| UnknownFault {
                name: wanted.to_string(),
                known: Fault::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The set of faults switched on in one clinic. Empty means a correct clinic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    /// A clinic with no faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list such as `switch-owner,profile-cache`.
    /// Empty items are ignored so `""` and `"a,"` are accepted.
    pub fn parse_list(list: &str) -> Result<Self, UnknownFault> {
        list.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(Fault::from_str)
            .collect()
    }

    /// Faults named in [`FAULTS_ENV`], or none when it is unset.
    pub fn from_env() -> Result<Self, UnknownFault> {
        match std::env::var(FAULTS_ENV) {
            Ok(list) => Self::parse_list(&list),
            Err(_) => Ok(Self::none()),
        }
    }

    pub fn with(mut self, fault: Fault) -> Self {
        self.0.insert(fault);
        self
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Fault> for Faults {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Fault::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = BTreeSet::new();
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>().unwrap(), *fault);
            assert!(seen.insert(fault.name()), "duplicate name {fault}");
            assert!(!fault.description().is_empty());
        }
        assert!(Fault::ALL.len() >= 8);
    }

    #[test]
    fn parse_list_accepts_commas_and_rejects_unknown_names() {
        let faults = Faults::parse_list("switch-owner, profile-cache,").unwrap();
        assert!(faults.has(Fault::SwitchOwner) && faults.has(Fault::ProfileCache));
        assert!(!faults.has(Fault::MediaIdor));
        let err = Faults::parse_list("switch-owner,nope").unwrap_err();
        assert_eq!(err.name, "nope");
        assert!(err.to_string().contains("switch-race"), "{err}");
    }
}
