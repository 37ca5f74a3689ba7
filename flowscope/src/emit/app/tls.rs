//! Suricata's EVE `tls` object from a [`TlsSession`].

use serde_json::{json, Map, Value};

use crate::proto::tls::{suricata_version_name, TlsSession};

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for seconds since the epoch, as Suricata
/// writes certificate dates (`CreateUtcIsoTimeString`, no fraction).
fn iso_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days, for any day count.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The `tls` object of a Suricata EVE record (extended form), with the
/// names of Suricata's EVE schema. Absent facts are left out, as Suricata
/// does; `version` is always there (`"UNDETERMINED"` before a ServerHello).
pub fn eve_tls(s: &TlsSession) -> Value {
    let mut m = Map::new();
    if let Some(c) = &s.certificates {
        let strings = [
            ("subject", &c.subject),
            ("issuerdn", &c.issuer),
            ("serial", &c.serial),
            ("fingerprint", &c.fingerprint),
        ];
        for (k, v) in strings {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.as_str()));
            }
        }
        if !c.san.is_empty() {
            m.insert("subjectaltname".into(), json!(c.san));
        }
    }
    let ch = s.client_hello.as_ref();
    if let Some(sni) = ch.and_then(|c| c.sni.as_deref()) {
        m.insert("sni".into(), Value::from(sni));
    }
    let version = match s.version() {
        Some(v) => suricata_version_name(v),
        None => "UNDETERMINED".to_owned(),
    };
    m.insert("version".into(), Value::from(version));
    if let Some(c) = &s.certificates {
        if let Some(t) = c.not_before {
            m.insert("notbefore".into(), Value::from(iso_utc(t)));
        }
        if let Some(t) = c.not_after {
            m.insert("notafter".into(), Value::from(iso_utc(t)));
        }
    }
    if let Some(c) = ch {
        if let (Some(h), Some(st)) = (&c.ja3_hash, &c.ja3) {
            m.insert("ja3".into(), json!({ "hash": h, "string": st }));
        }
    }
    if let Some(sh) = &s.server_hello {
        m.insert(
            "ja3s".into(),
            json!({ "hash": sh.ja3s_hash, "string": sh.ja3s }),
        );
    }
    if let Some(j) = ch.and_then(|c| c.ja4.as_deref()) {
        m.insert("ja4".into(), Value::from(j));
    }
    if let Some(c) = ch.filter(|c| !c.alpn.is_empty()) {
        m.insert("client_alpns".into(), json!(c.alpn));
    }
    if let Some(a) = s.server_hello.as_ref().and_then(|sh| sh.alpn.as_deref()) {
        m.insert("server_alpns".into(), json!([a]));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        // 2016-11-09T11:16:41Z = 1478690201 (date -u -d @1478690201).
        assert_eq!(iso_utc(1_478_690_201), "2016-11-09T11:16:41");
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00");
        // 1969-12-31T23:59:59: one second before the epoch.
        assert_eq!(iso_utc(-1), "1969-12-31T23:59:59");
        // 2000-02-29 (leap day): 951782400.
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00");
    }

    #[test]
    fn empty_session_has_only_version() {
        let v = eve_tls(&TlsSession::default());
        assert_eq!(v, json!({ "version": "UNDETERMINED" }));
    }
}
