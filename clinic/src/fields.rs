//! What the clinic accepts in a text field, said once.
//!
//! Each rule here checks a request in its handler *and* is the schema the
//! OpenAPI document publishes for that field, so the two cannot drift apart
//! (Schemathesis found that they had: a blank name or a 7-character
//! password was documented as valid and answered 400). A value is checked
//! as sent and stored trimmed, so patterns allow the whitespace a trim
//! removes; they spell that whitespace out instead of writing `\s`, which
//! means different characters to Rust, Python and ECMAScript engines.

use std::sync::LazyLock;

use regex::Regex;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};

use crate::error::{ApiError, ApiResult};

/// The characters `str::trim` removes (Unicode `White_Space`), as the body
/// of a regex character class.
pub const WHITESPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Four-digit years with a 29 February (the Gregorian rule).
const LEAP_YEAR: &str =
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";

/// The years 2000 to 2999, and those of them with a 29 February.
const SLOT_YEAR: &str = "2[0-9]{3}";
const SLOT_LEAP_YEAR: &str = "(?:2[0-9](?:0[48]|[2468][048]|[13579][26])|2[048]00)";

/// `YYYY-MM-DD` for a day that exists: a pattern that knows month lengths
/// and leap years, so that a generator drawing from it never draws
/// 2023-02-29, which the handler would refuse.
fn calendar_date(year: &str, leap_year: &str) -> String {
    let months = "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])\
                  |(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)\
                  |02-(?:0[1-9]|1[0-9]|2[0-8])";
    format!("(?:{year}-(?:{months})|{leap_year}-02-29)")
}

/// The whole value is `inner`, give or take the whitespace a trim removes.
fn padded(inner: &str) -> String {
    format!("^[{WHITESPACE}]*(?:{inner})[{WHITESPACE}]*$")
}

fn regex(pattern: String) -> Regex {
    Regex::new(&pattern).expect("the clinic's field patterns compile")
}

static NOT_BLANK: LazyLock<Regex> = LazyLock::new(|| regex(format!("[^{WHITESPACE}]")));

/// Something before and after an `@`, once trimmed.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    let edge = format!("[^@{WHITESPACE}]");
    regex(format!(
        "^[{WHITESPACE}]*{edge}[\\s\\S]*@[\\s\\S]*{edge}[{WHITESPACE}]*$"
    ))
});

static DATE: LazyLock<Regex> =
    LazyLock::new(|| regex(padded(&calendar_date("[0-9]{4}", LEAP_YEAR))));

/// ASCII because SQLite's NOCASE folds only ASCII, and it is what keeps user
/// names unique whatever their case; no `@`, so it never reads as an e-mail.
static USERNAME: LazyLock<Regex> = LazyLock::new(|| regex(padded("[A-Za-z0-9._-]{3,64}")));

/// RFC 3339 as JSON Schema's `date-time` reads it, narrowed to what a
/// booking means: upper-case `T` and `Z`, no leap second, at most
/// nanoseconds, years 2000 to 2999. Not padded: a padded value is no
/// `date-time`, so the handler does not trim it.
static SLOT: LazyLock<Regex> = LazyLock::new(|| {
    let hour = "(?:[01][0-9]|2[0-3])";
    let date = calendar_date(SLOT_YEAR, SLOT_LEAP_YEAR);
    regex(format!(
        "^{date}T{hour}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,9}})?(?:Z|[+-]{hour}:[0-5][0-9])$"
    ))
});

/// One text field's rule.
pub struct Text {
    /// The rule in words: the schema's description and the 400's message.
    rule: &'static str,
    min_chars: Option<usize>,
    max_chars: Option<usize>,
    pattern: Option<&'static LazyLock<Regex>>,
    format: Option<KnownFormat>,
}

impl Text {
    const ANY: Text = Text {
        rule: "",
        min_chars: None,
        max_chars: None,
        pattern: None,
        format: None,
    };

    /// `value` as sent if it keeps the rule, else a 400 that states it.
    pub fn check<'a>(&self, field: &str, value: &'a str) -> ApiResult<&'a str> {
        let chars = value.chars().count();
        let keeps = self.min_chars.is_none_or(|min| chars >= min)
            && self.max_chars.is_none_or(|max| chars <= max)
            && self.pattern.is_none_or(|p| p.is_match(value));
        if !keeps {
            return Err(ApiError::bad_request(format!(
                "{field} must be {}",
                self.rule
            )));
        }
        Ok(value)
    }

    /// The field's schema: a string that keeps the rule.
    pub fn schema(&self) -> Schema {
        self.builder(Type::String.into()).build().into()
    }

    /// The schema of a field that may also be `null` (left as it is).
    pub fn nullable_schema(&self) -> Schema {
        let types = SchemaType::from_iter([Type::String, Type::Null]);
        self.builder(types).build().into()
    }

    fn builder(&self, types: SchemaType) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(types)
            .description(Some(self.rule))
            .min_length(self.min_chars)
            .max_length(self.max_chars)
            .pattern(self.pattern.map(|p| p.as_str()))
            .format(self.format.clone().map(SchemaFormat::KnownFormat))
    }
}

pub static NAME: Text = Text {
    rule: "1 to 200 characters, not all blank",
    max_chars: Some(200),
    pattern: Some(&NOT_BLANK),
    ..Text::ANY
};

pub static EMAIL_ADDRESS: Text = Text {
    rule: "an e-mail address such as name@example.org, at most 254 characters",
    max_chars: Some(254),
    pattern: Some(&EMAIL),
    ..Text::ANY
};

pub static DATE_OF_BIRTH: Text = Text {
    rule: "a date as YYYY-MM-DD",
    pattern: Some(&DATE),
    ..Text::ANY
};

pub static PHONE: Text = Text {
    rule: "1 to 40 characters, not all blank",
    max_chars: Some(40),
    pattern: Some(&NOT_BLANK),
    ..Text::ANY
};

pub static USER_NAME: Text = Text {
    rule: "3 to 64 letters, digits, `.`, `_` or `-`; unique whatever its case",
    pattern: Some(&USERNAME),
    ..Text::ANY
};

pub static PASSWORD: Text = Text {
    rule: "at least 8 characters",
    min_chars: Some(8),
    ..Text::ANY
};

pub static SLOT_TIME: Text = Text {
    rule: "an RFC 3339 time from 2000 to 2999 such as 2027-03-01T09:30:00Z",
    pattern: Some(&SLOT),
    format: Some(KnownFormat::DateTime),
    ..Text::ANY
};

pub static REASON: Text = Text {
    rule: "1 to 2000 characters, not all blank",
    max_chars: Some(2000),
    pattern: Some(&NOT_BLANK),
    ..Text::ANY
};

pub static TITLE: Text = Text {
    rule: "1 to 200 characters, not all blank",
    max_chars: Some(200),
    pattern: Some(&NOT_BLANK),
    ..Text::ANY
};

pub static NOTE: Text = Text {
    rule: "1 to 5000 characters, not all blank",
    max_chars: Some(5000),
    pattern: Some(&NOT_BLANK),
    ..Text::ANY
};

/// Schemas for `#[schema(schema_with = ...)]`, which takes a function.
pub mod schemas {
    use super::*;

    pub fn name() -> Schema {
        NAME.schema()
    }
    pub fn name_or_null() -> Schema {
        NAME.nullable_schema()
    }
    pub fn email() -> Schema {
        EMAIL_ADDRESS.schema()
    }
    pub fn email_or_null() -> Schema {
        EMAIL_ADDRESS.nullable_schema()
    }
    pub fn phone() -> Schema {
        PHONE.schema()
    }
    pub fn phone_or_null() -> Schema {
        PHONE.nullable_schema()
    }
    pub fn date_of_birth() -> Schema {
        DATE_OF_BIRTH.schema()
    }
    pub fn username_or_null() -> Schema {
        USER_NAME.nullable_schema()
    }
    pub fn password() -> Schema {
        PASSWORD.schema()
    }
    pub fn slot() -> Schema {
        SLOT_TIME.schema()
    }
    pub fn reason() -> Schema {
        REASON.schema()
    }
    pub fn note() -> Schema {
        NOTE.schema()
    }
    pub fn note_or_null() -> Schema {
        NOTE.nullable_schema()
    }
    pub fn title() -> Schema {
        TITLE.schema()
    }
    pub fn title_or_null() -> Schema {
        TITLE.nullable_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whitespace_class_is_what_trim_removes() {
        let class = regex(format!("^[{WHITESPACE}]$"));
        let mismatched: Vec<char> = (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .filter(|c| class.is_match(c.encode_utf8(&mut [0; 4])) != c.is_whitespace())
            .collect();
        assert!(mismatched.is_empty(), "{mismatched:?}");
    }

    #[test]
    fn a_date_of_birth_is_a_day_that_exists() {
        let years = [
            0, 4, 100, 400, 1900, 1990, 2000, 2023, 2024, 2100, 9996, 9999,
        ];
        for year in years {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let exists = text.parse::<jiff::civil::Date>().is_ok();
                    assert_eq!(DATE.is_match(&text), exists, "{text}");
                }
            }
        }
        for padded in [" 2024-02-29", "2024-02-29\n", "\u{3000}1990-01-01\t"] {
            assert!(DATE.is_match(padded), "{padded:?}");
        }
        for refused in [
            "20240101",
            "+002024-01-01",
            "2024-01-01T00:00",
            "2024-1-1",
            "",
        ] {
            assert!(!DATE.is_match(refused), "{refused:?}");
        }
    }

    #[test]
    fn a_slot_is_an_rfc_3339_time_jiff_can_read() {
        for year in [2000, 2023, 2024, 2100, 2400, 2999] {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}T23:59:59.123456789-23:59");
                    let exists = text.parse::<jiff::Timestamp>().is_ok();
                    assert_eq!(SLOT.is_match(&text), exists, "{text}");
                }
            }
        }
        for refused in [
            "1999-12-31T23:59:59Z",
            "3000-01-01T00:00:00Z",
            "2027-03-01t09:30:00z",
            "2027-03-01 09:30:00Z",
            "2027-03-01T09:30Z",
            "2027-03-01T09:30:60Z",
            "2027-03-01T09:30:00.1234567890Z",
            "2027-03-01T09:30:00+0100",
            "2027-03-01T09:30:00Z[UTC]",
            " 2027-03-01T09:30:00Z",
        ] {
            assert!(SLOT_TIME.check("slot", refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn e_mail_addresses_and_user_names_are_checked_as_trimmed() {
        for email in ["a@b", " ada@example.org\n", "a@b@c", "x @ y"] {
            assert!(EMAIL_ADDRESS.check("email", email).is_ok(), "{email:?}");
        }
        for email in ["", "@", "a@", "@b", " a@ ", "ab", "\u{85}@b"] {
            assert!(EMAIL_ADDRESS.check("email", email).is_err(), "{email:?}");
        }
        let long = format!("{}@b", "a".repeat(252));
        assert!(EMAIL_ADDRESS.check("email", &long).is_ok());
        assert!(EMAIL_ADDRESS.check("email", &format!("a{long}")).is_err());
        for username in ["ada", " ada.l_9-x ", &"a".repeat(64)] {
            assert!(
                USER_NAME.check("username", username).is_ok(),
                "{username:?}"
            );
        }
        for username in ["ab", "ada@x", "Ada Lovelace", "ädä", &"a".repeat(65)] {
            assert!(
                USER_NAME.check("username", username).is_err(),
                "{username:?}"
            );
        }
    }

    #[test]
    fn a_blank_or_long_text_is_refused_with_its_rule() {
        assert!(NAME.check("name", " \u{2003}\t").is_err());
        assert!(NAME.check("name", " a ").is_ok());
        assert!(NAME.check("name", &"é".repeat(200)).is_ok());
        let refused = NAME.check("name", &"é".repeat(201)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "name must be 1 to 200 characters, not all blank"
        );
        assert!(PASSWORD.check("password", "1234567").is_err());
        assert!(PASSWORD.check("password", "12345678").is_ok());
    }
}
