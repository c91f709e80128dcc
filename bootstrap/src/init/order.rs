//! The ordering rule: what the first request needs runs before serving, longest
//! first; everything else runs after the first response.
//!
//! A registration's declared phase always wins. Without one, the profile decides;
//! a registration the profile does not name runs before serving (the safe default,
//! since running early is never wrong, only slower). Without a profile, each list is
//! ordered by name. The rule is pure: same registrations and profile, same order.

use std::collections::{HashMap, HashSet};

use super::profile::{Entry, Profile};
use super::{Declared, Registration};

/// When a registration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before the body of `main`.
    BeforeServing,
    /// After the first response.
    AfterFirstResponse,
}

/// The registrations split into the two phases, each in the order it runs.
#[derive(Debug, Default)]
pub struct Order {
    /// Run before the body of `main`, in this order.
    pub before: Vec<&'static Registration>,
    /// Run after the first response, in this order.
    pub after: Vec<&'static Registration>,
    /// What did not match between the profile and the program, and names shared by
    /// two registrations, as one line (warn once); `None` when all is well.
    pub mismatch: Option<String>,
}

impl Order {
    /// Orders `registrations` (sorted by name) with `profile`.
    ///
    /// ```
    /// use coldstart_bootstrap::init::{Order, Profile, registrations};
    /// let profile = Profile::parse("coldstart-profile 1\n").unwrap();
    /// let order = Order::new(&registrations(), Some(&profile));
    /// assert!(order.before.is_empty() && order.after.is_empty());
    /// ```
    pub fn new(registrations: &[&'static Registration], profile: Option<&Profile>) -> Order {
        let mut order = Order::default();
        let mut missing = Vec::new();
        // Looked up once per registration: a map keeps 1000 registrations linear.
        let entries: Option<HashMap<&str, &Entry>> =
            profile.map(|p| p.entries.iter().map(|e| (e.name.as_str(), e)).collect());
        let entry = |name: &str| entries.as_ref().map(|m| m.get(name).copied());
        for &r in registrations {
            let place = match (r.declared, entry(r.name)) {
                (Declared::Critical, _) => Place::BeforeServing,
                (Declared::Deferred, _) => Place::AfterFirstResponse,
                (Declared::Auto, Some(Some(entry))) if !entry.needed => Place::AfterFirstResponse,
                (Declared::Auto, Some(None)) => {
                    missing.push(r.name);
                    Place::BeforeServing
                }
                (Declared::Auto, _) => Place::BeforeServing,
            };
            match place {
                Place::BeforeServing => order.before.push(r),
                Place::AfterFirstResponse => order.after.push(r),
            }
        }
        let shared: Vec<&str> = registrations
            .windows(2)
            .filter(|w| w[0].name == w[1].name)
            .map(|w| w[0].name)
            .collect();
        if let (Some(p), Some(entries)) = (profile, &entries) {
            let micros = |r: &&Registration| entries.get(r.name).map_or(0, |e| e.micros);
            // Stable sort: equal durations keep name order.
            order.before.sort_by_key(|r| std::cmp::Reverse(micros(r)));
            order.after.sort_by_key(|r| std::cmp::Reverse(micros(r)));
            let registered: HashSet<&str> = registrations.iter().map(|r| r.name).collect();
            let unknown: Vec<&str> = p
                .entries
                .iter()
                .map(|e| e.name.as_str())
                .filter(|n| !registered.contains(n))
                .collect();
            order.mismatch = mismatch(&missing, &unknown);
        }
        if !shared.is_empty() {
            let line = format!(
                "names given to more than one registration (profiles cannot tell them apart; \
                 give one a `name = \"...\"`): {}",
                shared.join(", ")
            );
            order.mismatch = Some(match order.mismatch.take() {
                Some(m) => format!("{m}; {line}"),
                None => line,
            });
        }
        order
    }

    /// Where `name` runs, if it is registered.
    pub fn place(&self, name: &str) -> Option<Place> {
        if self.before.iter().any(|r| r.name == name) {
            Some(Place::BeforeServing)
        } else if self.after.iter().any(|r| r.name == name) {
            Some(Place::AfterFirstResponse)
        } else {
            None
        }
    }
}

fn mismatch(missing: &[&str], unknown: &[&str]) -> Option<String> {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "{} not in the profile, run before serving (the default): {}",
            missing.len(),
            missing.join(", ")
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "{} named in the profile but not registered, ignored: {}",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Outcome, Work};

    fn ok() -> Outcome {
        Ok(())
    }

    fn leak(name: &str, declared: Declared) -> &'static Registration {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Box::leak(Box::new(Registration::new(
            name,
            declared,
            false,
            Work::Fn(ok),
        )))
    }

    fn names(list: &[&Registration]) -> Vec<&'static str> {
        list.iter().map(|r| r.name).collect()
    }

    fn regs() -> Vec<&'static Registration> {
        vec![
            leak("a", Declared::Auto),
            leak("b", Declared::Auto),
            leak("c", Declared::Deferred),
            leak("d", Declared::Critical),
            leak("e", Declared::Auto),
        ]
    }

    #[test]
    fn without_a_profile_undeclared_runs_before_serving_by_name() {
        let order = Order::new(&regs(), None);
        assert_eq!(names(&order.before), ["a", "b", "d", "e"]);
        assert_eq!(names(&order.after), ["c"]);
        assert_eq!(order.mismatch, None);
    }

    #[test]
    fn the_profile_places_undeclared_and_orders_longest_first() {
        let profile = Profile::parse(
            "coldstart-profile 1\nneeded 5 fn a\nlater 90 fn b\nneeded 50 fn e\nlater 1 fn d\nneeded 70 fn c\n",
        )
        .unwrap();
        let order = Order::new(&regs(), Some(&profile));
        // d and c keep their declared phases whatever the profile says.
        assert_eq!(names(&order.before), ["e", "a", "d"]);
        assert_eq!(names(&order.after), ["b", "c"]);
        assert_eq!(order.mismatch, None);
        assert_eq!(order.place("b"), Some(Place::AfterFirstResponse));
        assert_eq!(order.place("zz"), None);
    }

    #[test]
    fn a_shared_name_is_reported() {
        let regs = vec![leak("a", Declared::Auto), leak("a", Declared::Deferred)];
        let order = Order::new(&regs, None);
        assert_eq!(order.before.len() + order.after.len(), 2);
        assert!(
            order
                .mismatch
                .unwrap()
                .ends_with("give one a `name = \"...\"`): a")
        );
    }

    #[test]
    fn missing_and_unknown_names_fall_back_and_are_reported_in_one_line() {
        let profile =
            Profile::parse("coldstart-profile 1\nlater 9 fn a\nneeded 3 static gone::X\n").unwrap();
        let order = Order::new(&regs(), Some(&profile));
        assert_eq!(names(&order.before), ["b", "d", "e"]);
        assert_eq!(names(&order.after), ["a", "c"]);
        assert_eq!(
            order.mismatch.as_deref(),
            Some(
                "2 not in the profile, run before serving (the default): b, e; \
                 1 named in the profile but not registered, ignored: gone::X"
            )
        );
    }
}
