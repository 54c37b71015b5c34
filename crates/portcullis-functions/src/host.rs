//! What every environment of every function shares: the specs, the account identity, the
//! variables passed on, and the bootstraps written to a private directory.

use indexmap::IndexMap;
use portcullis_config::Function;

use crate::FunctionError;
use crate::process::{Bootstraps, INHERITED, Identity};

const PYTHON_BOOTSTRAP: &str = include_str!("bootstrap/python.py");
const NODE_BOOTSTRAP: &str = include_str!("bootstrap/node.mjs");

pub(crate) struct Host {
    pub(crate) functions: IndexMap<String, Function>,
    pub(crate) identity: Identity,
    pub(crate) inherited: Vec<(String, String)>,
    pub(crate) extra_env: Vec<(String, String)>,
    python: std::path::PathBuf,
    node: std::path::PathBuf,
    /// Removed when the host is dropped.
    _dir: tempfile::TempDir,
}

impl Host {
    pub(crate) fn new(
        functions: IndexMap<String, Function>,
        identity: Identity,
        extra_env: Vec<(String, String)>,
    ) -> Result<Host, FunctionError> {
        let io =
            |e: std::io::Error| FunctionError::Gateway(format!("cannot write bootstraps: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("portcullis-functions-")
            .tempdir()
            .map_err(io)?;
        let python = dir.path().join("python.py");
        let node = dir.path().join("node.mjs");
        std::fs::write(&python, PYTHON_BOOTSTRAP).map_err(io)?;
        std::fs::write(&node, NODE_BOOTSTRAP).map_err(io)?;
        let inherited = INHERITED
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
        Ok(Host {
            functions,
            identity,
            inherited,
            extra_env,
            python,
            node,
            _dir: dir,
        })
    }

    pub(crate) fn function(&self, name: &str) -> Result<&Function, FunctionError> {
        self.functions
            .get(name)
            .ok_or_else(|| FunctionError::UnknownFunction(name.to_owned()))
    }

    pub(crate) fn bootstraps(&self) -> Bootstraps<'_> {
        Bootstraps {
            python: &self.python,
            node: &self.node,
        }
    }
}
