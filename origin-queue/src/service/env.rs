//! Where settings are read from: the process's environment, or a list.

/// Where settings are read from: the process's environment, or (for a service built
/// in-process, as tests do) a list of the same variables.
pub struct Env(Box<Lookup>);

/// Looks a variable up by name.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    /// The process's environment.
    pub fn process() -> Env {
        Env(Box::new(|name| std::env::var(name).ok()))
    }

    /// Exactly these variables, and no others.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env(Box::new(move |name| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }))
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}
