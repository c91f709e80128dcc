//! serde wrappers that never fail a read for a value of an unexpected type: a
//! string, an array of strings, an object's entries or an object read as a type,
//! where the input has one, and none (the value skipped) where it has anything else.
//! Strings are borrowed from the input where they hold no escape. For what callers
//! of a function may put in an event (an HTTP event's headers): an odd value there
//! must cost that value only, never the rest of the event.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The scalar visits of a lenient visitor: each value gives `$none`.
macro_rules! other_values_are {
    ($none:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

/// A string where the event has one; any other value (`null`, a number, an object)
/// is none, skipped without failing the read.
#[derive(Debug, Default)]
pub(crate) struct Text<'a>(pub(crate) Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strings;
        impl<'de> Visitor<'de> for Strings {
            type Value = Option<Cow<'de, str>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v)))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq).map(|()| None)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| None)
            }
            other_values_are!(None);
        }
        deserializer.deserialize_any(Strings).map(Text)
    }
}

/// At most this many entries of an object are kept by [`Entries`], and strings of an
/// array by [`Texts`], the rest read past: a header's read needs a few, and an event
/// of 6 MB made of `"x":0,` would otherwise keep a million (about 50 MB).
pub(crate) const KEPT: usize = 64;

thread_local! {
    /// The names [`Entries`] keeps while [`keeping`] runs (compared in any case); all
    /// names outside it.
    static NAMES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Runs `read` with [`Entries`] keeping only the entries named in `names` (in any
/// case): an entry named otherwise is read past, its value unread and uncopied.
pub(crate) fn keeping<T>(names: Vec<String>, read: impl FnOnce() -> T) -> T {
    /// Puts back the names kept before, also where `read` panics.
    struct Restore(Option<Vec<String>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            NAMES.with_borrow_mut(|kept| *kept = before);
        }
    }
    let _restore = Restore(NAMES.replace(Some(names)));
    read()
}

/// Whether [`Entries`] keeps an entry named `name` (see [`keeping`]).
fn kept(name: &str) -> bool {
    NAMES.with_borrow(|names| {
        names
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
    })
}

/// The strings of an array (a header's values in `multiValueHeaders`), the first
/// [`KEPT`] of them; any other value, or an element that is no string, gives none.
#[derive(Debug, Default)]
pub(crate) struct Texts<'a>(pub(crate) Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Texts<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strings<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Strings<'a> {
            type Value = Vec<Cow<'a, str>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while all.len() < KEPT {
                    match seq.next_element::<Text<'a>>()? {
                        Some(Text(text)) => all.extend(text),
                        None => return Ok(all),
                    }
                }
                skip_seq(seq).map(|()| all)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| Vec::new())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            other_values_are!(Vec::new());
        }
        deserializer
            .deserialize_any(Strings(PhantomData))
            .map(Texts)
    }
}

/// The entries of an object (the headers), in the event's order, their names
/// borrowed where they hold no escape: the first [`KEPT`] of those [`keeping`] names.
/// The others are read past, their values unread; an entry whose name is no string is
/// passed over, and any other value than an object gives none.
#[derive(Debug)]
pub(crate) struct Entries<'a, V>(pub(crate) Vec<(Cow<'a, str>, V)>);

impl<V> Default for Entries<'_, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Entries<'a, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs<'a, V>(PhantomData<(&'a (), V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> Visitor<'de> for Pairs<'a, V> {
            type Value = Vec<(Cow<'a, str>, V)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(Text(name)) = map.next_key::<Text<'a>>()? {
                    match name.filter(|name| all.len() < KEPT && kept(name)) {
                        Some(name) => all.push((name, map.next_value::<V>()?)),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(all)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq).map(|()| Vec::new())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            other_values_are!(Vec::new());
        }
        deserializer
            .deserialize_any(Pairs(PhantomData))
            .map(Entries)
    }
}

/// An object read as `T` where the event has one; any other value is none, skipped
/// without failing the read.
#[derive(Debug)]
pub(crate) struct Lenient<T>(pub(crate) Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Compound<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Compound<T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq).map(|()| None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            // A borrowed string comes here too (serde's default).
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            other_values_are!(None);
        }
        deserializer
            .deserialize_any(Compound(PhantomData))
            .map(Lenient)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        headers: Entries<'a, Text<'a>>,
        #[serde(borrow)]
        multi: Entries<'a, Texts<'a>>,
    }

    /// While `keeping` runs, only the names it was given are kept (in any case), at
    /// most [`KEPT`] of them, the other entries read past whatever their values; an
    /// array keeps its first [`KEPT`] strings. Outside it, every name.
    #[test]
    fn entries_keep_the_names_asked_for_and_at_most_kept() {
        let mut event = String::from(r#"{"headers":{"#);
        for i in 0..10_000 {
            event.push_str(&format!(r#""x-{i}":{{"deep":[1,"two",{{"a":null}}]}},"#));
        }
        for i in 0..1000 {
            event.push_str(&format!(r#""User-Agent":"ua {i}","#));
        }
        event.push_str(r#""user-agent":"last"},"multi":{"Host":["#);
        for i in 0..1000 {
            event.push_str(&format!(r#""h{i}","#));
        }
        event.push_str(r#""end"],"other":["x"]}}"#);
        let names = vec!["user-agent".to_owned(), "host".to_owned()];
        let read: Event<'_> = keeping(names, || serde_json::from_str(&event)).unwrap();
        assert_eq!(read.headers.0.len(), KEPT);
        assert!(read.headers.0.iter().all(|(name, _)| name == "User-Agent"));
        assert_eq!(read.headers.0[0].1.0.as_deref(), Some("ua 0"));
        assert_eq!(read.multi.0.len(), 1, "{:?}", read.multi.0.first());
        assert_eq!(read.multi.0[0].1.0.len(), KEPT);
        assert_eq!(read.multi.0[0].1.0[0], "h0");

        let all: Event<'_> =
            serde_json::from_str(r#"{"headers":{"a":"1","b":"2"},"multi":{"c":["3"]}}"#).unwrap();
        assert_eq!((all.headers.0.len(), all.multi.0.len()), (2, 1));
    }
}
