//! Ports: each name of `[ports] names` gets a port of its own, kept across
//! `apply`, apart from every other sandbox's and from whatever listens.

use std::collections::BTreeSet;
use std::net::TcpListener;

use super::registry::RegistryError;
use crate::recipe::config::PortRange;
use crate::sandbox::lock::{self, NamedPorts};

/// `port 20001` for the one default port, else `ports API=20002, WEB=20001`.
pub fn text(ports: &NamedPorts) -> String {
    if lock::stored_ports(ports).is_empty()
        && let Some(port) = ports.values().next()
    {
        return format!("port {port}");
    }
    let each: Vec<String> = ports.iter().map(|(n, p)| format!("{n}={p}")).collect();
    format!("ports {}", each.join(", "))
}

/// The ports sandbox `seed` holds for `names`. A name keeps its port in
/// `kept` (what the sandbox held before: ports stay stable across `apply`);
/// each other name gets a port that no record holds (`taken`), none of the
/// sandbox's own has, and nothing listens on (`free`). The first name's
/// search starts where a single port's always did, so a sandbox without
/// `[ports] names` gets the port it always got.
pub fn allocate_ports(
    names: &[String],
    kept: &NamedPorts,
    taken: &BTreeSet<u16>,
    range: PortRange,
    seed: &str,
    free: impl Fn(u16) -> bool,
) -> Result<NamedPorts, RegistryError> {
    let mut ports: NamedPorts = names
        .iter()
        .filter_map(|name| kept.get(name).map(|port| (name.clone(), *port)))
        .collect();
    for (index, name) in names.iter().enumerate() {
        if ports.contains_key(name) {
            continue;
        }
        let mut unavailable = taken.clone();
        unavailable.extend(ports.values());
        let seed = match index {
            0 => seed.to_string(),
            _ => format!("{seed}:{name}"),
        };
        let port = allocate_port(&unavailable, range, &seed, &free)?;
        ports.insert(name.clone(), port);
    }
    Ok(ports)
}

/// A port for `seed` that is not `taken` and that `free` says nothing
/// listens on. The search starts at a point derived from `seed`, so the same
/// sandbox name tends to get the same port in every clone, and walks up from
/// there: collisions are resolved against the registry, never left to chance.
fn allocate_port(
    taken: &BTreeSet<u16>,
    range: PortRange,
    seed: &str,
    free: impl Fn(u16) -> bool,
) -> Result<u16, RegistryError> {
    let size = u32::from(range.last - range.first) + 1;
    let start = u32::from_str_radix(&crate::hash::short(seed, 8), 16).expect("hex") % size;
    (0..size)
        .map(|step| range.first + ((start + step) % size) as u16)
        .find(|port| !taken.contains(port) && free(*port))
        .ok_or(RegistryError::PortsExhausted {
            first: range.first,
            last: range.last,
        })
}

/// Nothing listens on `port` on the loopback interface.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: PortRange = PortRange {
        first: 41000,
        last: 41002,
    };

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn ports_skip_taken_and_wrap() {
        let first = allocate_port(&BTreeSet::new(), RANGE, "a", |_| true).unwrap();
        let taken: BTreeSet<u16> = [41000, 41001, 41002]
            .into_iter()
            .filter(|p| *p != first)
            .collect();
        assert_eq!(allocate_port(&taken, RANGE, "b", |_| true).unwrap(), first);
        let all: BTreeSet<u16> = [41000, 41001, 41002].into();
        assert!(matches!(
            allocate_port(&all, RANGE, "c", |_| true),
            Err(RegistryError::PortsExhausted { .. })
        ));
    }

    /// Every name of a sandbox gets its own port, apart from every other
    /// record's and from what listens; the first starts where a single
    /// port's search always did.
    #[test]
    fn named_ports_are_distinct_and_skip_what_listens() {
        let range = PortRange {
            first: 30000,
            last: 30009,
        };
        let single = allocate_port(&BTreeSet::new(), range, "app/x", |_| true).unwrap();
        let taken = BTreeSet::from([30001, 30005]);
        let listening = 30002;
        let all = names(&["PORT", "API", "VITE", "DEBUG"]);
        let ports = allocate_ports(
            &all,
            &NamedPorts::new(),
            &BTreeSet::new(),
            range,
            "app/x",
            |_| true,
        )
        .unwrap();
        assert_eq!(ports["PORT"], single);
        let ports = allocate_ports(&all, &NamedPorts::new(), &taken, range, "app/x", |p| {
            p != listening
        })
        .unwrap();
        let values: BTreeSet<u16> = ports.values().copied().collect();
        assert_eq!(values.len(), 4, "{ports:?}");
        assert!(values.iter().all(|p| range.first <= *p && *p <= range.last));
        assert!(values.is_disjoint(&BTreeSet::from([30001, 30002, 30005])));
        // Seven ports left for eight names.
        let eight = names(&["A", "B", "C", "D", "E", "F", "G", "H"]);
        let err = allocate_ports(&eight, &NamedPorts::new(), &taken, range, "s", |p| {
            p != listening
        });
        assert!(matches!(err, Err(RegistryError::PortsExhausted { .. })));
    }

    /// A name keeps its port, even one that now listens (the sandbox's own
    /// server); a new name gets a port none of the kept ones has, and a
    /// dropped name's port goes.
    #[test]
    fn kept_ports_stay() {
        let kept = NamedPorts::from([("WEB".to_string(), 41001), ("OLD".to_string(), 41000)]);
        let ports = allocate_ports(
            &names(&["API", "WEB"]),
            &kept,
            &BTreeSet::new(),
            RANGE,
            "s",
            |p| p != 41001,
        )
        .unwrap();
        assert_eq!(ports["WEB"], 41001);
        assert_ne!(ports["API"], 41001);
        assert!(!ports.contains_key("OLD"));
        let again = allocate_ports(
            &names(&["API", "WEB"]),
            &ports,
            &BTreeSet::new(),
            RANGE,
            "s",
            |_| false,
        )
        .unwrap();
        assert_eq!(again, ports);
    }

    #[test]
    fn ports_read_as_one_phrase() {
        assert_eq!(
            text(&NamedPorts::from([("PORT".into(), 20001)])),
            "port 20001"
        );
        let named = NamedPorts::from([("WEB".into(), 20001), ("API".into(), 20002)]);
        assert_eq!(text(&named), "ports API=20002, WEB=20001");
    }

    #[test]
    fn a_listening_port_is_skipped() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = listener.local_addr().unwrap().port();
        let range = PortRange {
            first: busy,
            last: busy,
        };
        assert!(allocate_port(&BTreeSet::new(), range, "x", is_free).is_err());
    }
}
