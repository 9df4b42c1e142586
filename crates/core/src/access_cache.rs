//! Answers that depend only on what an org's access version covers (which
//! connections a member may use, what a saved virtual server is made of),
//! cached per replica. Database triggers bump the version with every such
//! change (migration 0008) and the token lookup reads it with the
//! principal, so an entry is used only while the version it was read at is
//! still the org's, whichever replica made the change.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A cache keyed by `K`, each entry valid for one access version. Past
/// `max` entries it starts again: cheaper than tracking use, and rare.
pub struct AccessCache<K, V> {
    map: Mutex<HashMap<K, (i64, V)>>,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> AccessCache<K, V> {
    pub fn new(max: usize) -> Self {
        AccessCache {
            map: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// The entry for `key` if it was read at `version`; never one for a
    /// principal read without a version.
    pub fn get(&self, key: &K, version: Option<i64>) -> Option<V> {
        let version = version?;
        let map = self.map.lock().ok()?;
        map.get(key)
            .filter(|(v, _)| *v == version)
            .map(|(_, value)| value.clone())
    }

    /// The entry for `key` and the version it was read at, whatever the
    /// current version: for a caller that checks the version itself.
    pub fn peek<Q>(&self, key: &Q) -> Option<(i64, V)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let map = self.map.lock().ok()?;
        map.get(key).map(|(v, value)| (*v, value.clone()))
    }

    /// Keeps `value` for `key` at `version`. The value must have been read
    /// after the principal carrying `version`: it is then at least as new
    /// as that version (a change in between bumped the version past it, so
    /// the next request reads again).
    pub fn put(&self, key: K, version: Option<i64>, value: V) {
        let Some(version) = version else { return };
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= self.max {
                map.clear();
            }
            map.insert(key, (version, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_serves_only_its_version_and_never_without_one() {
        let cache: AccessCache<&str, u32> = AccessCache::new(2);
        cache.put("a", Some(3), 1);
        assert_eq!(cache.get(&"a", Some(3)), Some(1));
        assert_eq!(cache.get(&"a", Some(4)), None);
        assert_eq!(cache.get(&"a", None), None);
        cache.put("b", None, 2);
        assert_eq!(cache.get(&"b", None), None);
        assert_eq!(cache.get(&"b", Some(0)), None);
        assert_eq!(cache.peek(&"a"), Some((3, 1)));
        assert_eq!(cache.peek(&"b"), None);
    }

    #[test]
    fn past_its_limit_it_starts_again() {
        let cache: AccessCache<u32, u32> = AccessCache::new(2);
        cache.put(1, Some(1), 10);
        cache.put(2, Some(1), 20);
        cache.put(3, Some(1), 30);
        assert_eq!(cache.get(&1, Some(1)), None);
        assert_eq!(cache.get(&3, Some(1)), Some(30));
    }
}
