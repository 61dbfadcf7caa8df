//! `/metrics` in the Prometheus text format. For now: days to expiry of every valid
//! certificate the built-in CA issued, per user and device (computed at scrape time).

use crate::ca::store::{revoked_serials, CaStore};

/// Prometheus label value escaping.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text.
pub fn render(data_dir: &std::path::Path, now: i64) -> String {
    let store = CaStore::new(data_dir);
    let revoked = revoked_serials(&store.revoked_path()).unwrap_or_default();
    let mut out = String::from(
        "# HELP certgate_client_cert_days_to_expiry Days until a certificate of the built-in CA expires (valid, unrevoked ones).\n\
         # TYPE certgate_client_cert_days_to_expiry gauge\n",
    );
    for r in store.list().unwrap_or_default() {
        if revoked.contains(&r.serial) || r.not_after <= now {
            continue;
        }
        let days = (r.not_after - now) / 86_400;
        out.push_str(&format!(
            "certgate_client_cert_days_to_expiry{{user=\"{}\",device=\"{}\",serial=\"{}\"}} {days}\n",
            label(&r.user),
            label(r.device.as_deref().unwrap_or("")),
            label(&r.serial)
        ));
    }
    out
}
