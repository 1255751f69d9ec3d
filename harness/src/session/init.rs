//! `crosstalk init --openapi FILE|URL`: writes a starter suite from an
//! OpenAPI document ([`crate::init`]), checked by planning it as `run`
//! would before it is written, never over an existing file.

use std::path::PathBuf;

use crate::plan::{Overrides, Plan};
use crate::scenario::Scenario;

use super::SessionError;

pub struct Init {
    /// A file path, or an `http(s)://` URL.
    pub openapi: String,
    /// The directory to write the suite into.
    pub out: PathBuf,
    /// Replace a file of the same name.
    pub force: bool,
}

/// What `init` wrote, and what it could not place.
pub struct Initialised {
    pub path: PathBuf,
    /// What was recognised as the sign-up and the login.
    pub account: String,
    pub unplaced: Vec<String>,
    pub steps: usize,
}

impl Init {
    pub async fn execute(self) -> Result<Initialised, SessionError> {
        let text = self.document().await?;
        let suite = crate::init::from_openapi(&text).map_err(|why| {
            SessionError::Input(format!(
                "{} is not an OpenAPI 3 document crosstalk can read: {why}",
                self.openapi
            ))
        })?;
        let name = suite.file_name.trim_end_matches(".toml").to_string();
        let scenario = Scenario::from_str(&name, &suite.text)?;
        let plan = Plan::build(&scenario, &Overrides::default())?;
        let path = self.out.join(&suite.file_name);
        if path.exists() && !self.force {
            return Err(SessionError::Input(format!(
                "{} exists: pass --force to replace it, or --out another directory",
                path.display()
            )));
        }
        let written =
            std::fs::create_dir_all(&self.out).and_then(|()| std::fs::write(&path, &suite.text));
        written.map_err(|err| {
            SessionError::Input(format!("cannot write {}: {err}", path.display()))
        })?;
        Ok(Initialised {
            path,
            account: suite.account,
            unplaced: suite.unplaced,
            steps: plan.steps.len() + plan.teardown.len(),
        })
    }

    /// The document's text, from its file or URL.
    async fn document(&self) -> Result<String, SessionError> {
        let source = &self.openapi;
        if source.starts_with("http://") || source.starts_with("https://") {
            let fetch = async {
                let response = reqwest::get(source).await?.error_for_status()?;
                response.text().await
            };
            return fetch
                .await
                .map_err(|err| SessionError::Input(format!("cannot fetch {source}: {err}")));
        }
        std::fs::read_to_string(source)
            .map_err(|err| SessionError::Input(format!("cannot read {source}: {err}")))
    }
}
