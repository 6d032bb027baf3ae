//! Strict JSON reading: every object the webhook reads itself must be a JSON object ([`Obj`]),
//! and no object of a review may have the same key twice ([`check_unique_keys`]), so that the
//! webhook never reads a body otherwise than the typed reading of the same body would.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::shown;

/// A `T` read from a JSON object only.
///
/// serde's derived structs also read a JSON array, field by field in the order they are declared.
/// The API server never sends one (Go reads a struct from an object only), and the webhook's
/// partial views list fewer fields, in another order, than the typed objects: an array would be
/// read as one thing here and as another by the typed reading (the operator's). So every object
/// the webhook reads itself must be a JSON object.
#[derive(Debug)]
pub(super) struct Obj<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectOnly(PhantomData))
            .map(Obj)
    }
}

/// `deserialize_with` for a field that must be a JSON object ([`Obj`]).
pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Obj::deserialize(d).map(|Obj(t)| t)
}

/// `deserialize_with` for an optional field that must be a JSON object (or null) ([`Obj`]).
pub(super) fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Obj<T>>::deserialize(d).map(|o| o.map(|Obj(t)| t))
}

/// `deserialize_with` for a list of JSON objects ([`Obj`]).
pub(super) fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Vec::<Obj<T>>::deserialize(d).map(|v| v.into_iter().map(|Obj(t)| t).collect())
}

/// Checks that no JSON object of `body` (valid JSON, nested at most as deep as the JSON reader
/// allows) has the same key twice; the error names the key and where it is
/// (`the key "version" appears twice in request.object.spec at line 1 column 420`).
pub(super) fn check_unique_keys(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    UniqueKeys("").deserialize(&mut deserializer)
}

/// Walks a JSON value, refusing an object with the same key twice. Holds the path of the value.
struct UniqueKeys<'p>(&'p str);

impl UniqueKeys<'_> {
    fn child(&self, name: &str) -> String {
        if self.0.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.0)
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(UniqueKeys(&format!("{}[{i}]", self.0)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let path = self.child(&key);
            if seen.contains(&key) {
                let parent = if self.0.is_empty() {
                    "the review"
                } else {
                    self.0
                };
                return Err(A::Error::custom(format!(
                    "the key {:?} appears twice in {}",
                    shown(&key),
                    shown(parent)
                )));
            }
            seen.insert(key);
            map.next_value_seed(UniqueKeys(&path))?;
        }
        Ok(())
    }
}
