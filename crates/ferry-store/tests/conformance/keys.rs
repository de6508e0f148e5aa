//! Identity in the conformance suite: tenants, and API keys stored with their hash, found
//! by prefix, listed per tenant, revoked once and only by their tenant, their last use
//! recorded.

use ferry_core::{egress::EgressPolicy, identity::TenantQuotas};
use ferry_store::{ApiKeyRow, Store, TenantRow};

use super::{audit, ms, t0};

fn tenant(id: &str) -> TenantRow {
    TenantRow {
        id: id.into(),
        name: id.to_uppercase(),
        created_at: t0(),
        quotas: TenantQuotas::default(),
        egress: EgressPolicy::default(),
    }
}

pub(super) async fn tenants_and_api_keys_are_kept_and_revoked(store: Store) {
    assert!(
        store
            .tenant_insert(&tenant("acme"), &audit())
            .await
            .expect("insert")
    );
    assert!(
        !store
            .tenant_insert(&tenant("acme"), &audit())
            .await
            .expect("again"),
        "a tenant id is taken once"
    );
    assert!(
        store
            .tenant_insert(&tenant("beta"), &audit())
            .await
            .expect("insert")
    );
    let ids: Vec<String> = (store.tenant_list().await.expect("list"))
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        ids,
        ["acme", "beta", "default"],
        "the default tenant is there from the start"
    );
    let quotas = TenantQuotas {
        max_submissions_per_second: Some(50),
        max_unfinished_jobs: Some(10_000_000_000),
    };
    assert!(
        store
            .tenant_set_quotas("acme", &quotas, &audit())
            .await
            .expect("set")
    );
    assert!(
        !store
            .tenant_set_quotas("nobody", &quotas, &audit())
            .await
            .expect("set nothing")
    );
    let acme = store.tenant_get("acme").await.expect("get").expect("acme");
    assert_eq!((acme.name.as_str(), acme.quotas), ("ACME", quotas));
    let beta = store.tenant_get("beta").await.expect("get").expect("beta");
    assert_eq!(beta.quotas, TenantQuotas::default(), "no limits unless set");
    assert!(store.tenant_get("nobody").await.expect("get").is_none());
    let egress = EgressPolicy {
        allow: vec!["127.0.0.1".parse().expect("a rule")],
        deny: vec!["evil.example".parse().expect("a rule")],
        allow_public: false,
        allow_private: false,
        rate_limits: vec![ferry_core::domain_rate::DomainRate {
            domain: "shop.example".parse().expect("a rule"),
            interval_ms: Some(1_000),
            max: None,
            per_ms: None,
        }],
        proxy: Some(
            "http://u:{{secret.PW}}@proxy.example:3128"
                .parse()
                .expect("a proxy"),
        ),
    };
    assert!(
        store
            .tenant_set_egress("acme", &egress, &audit())
            .await
            .expect("set egress")
    );
    assert!(
        !store
            .tenant_set_egress("nobody", &egress, &audit())
            .await
            .expect("set nothing")
    );
    let acme = store.tenant_get("acme").await.expect("get").expect("acme");
    assert_eq!((acme.quotas, &acme.egress), (quotas, &egress));
    assert_eq!(
        beta.egress,
        EgressPolicy::default(),
        "the default unless set"
    );

    let key = ApiKeyRow {
        prefix: "fk_acme0001".into(),
        tenant_id: "acme".into(),
        role: "worker".into(),
        secret_hash: vec![0, 1, 2, 255],
        kinds: Some(vec!["baemin.*".into()]),
        name: "office laptop".into(),
        created_at: t0(),
        expires_at: Some(t0() + ms(86_400_000)),
        last_used_at: None,
        revoked_at: None,
    };
    let other = ApiKeyRow {
        prefix: "fk_beta0001".into(),
        tenant_id: "beta".into(),
        role: "viewer".into(),
        kinds: None,
        expires_at: None,
        created_at: t0() + ms(1),
        ..key.clone()
    };
    store.api_key_insert(&key, &audit()).await.expect("key");
    store
        .api_key_insert(&other, &audit())
        .await
        .expect("other key");
    assert!(
        store.api_key_insert(&key, &audit()).await.is_err(),
        "a prefix names one key"
    );
    let get = async |prefix: &str| store.api_key_get(prefix).await.expect("get");
    assert_eq!(get("fk_acme0001").await, Some(key.clone()));
    assert_eq!(get("fk_beta0001").await, Some(other.clone()));
    assert_eq!(get("fk_nope").await, None);
    assert_eq!(
        store.api_key_list("acme").await.expect("list"),
        vec![key.clone()],
        "a tenant lists its own keys only"
    );

    store
        .api_key_used("fk_acme0001", t0() + ms(5))
        .await
        .expect("used");
    assert_eq!(
        get("fk_acme0001").await.and_then(|k| k.last_used_at),
        Some(t0() + ms(5))
    );

    assert!(
        !store
            .api_key_revoke("beta", "fk_acme0001", t0() + ms(9), &audit())
            .await
            .expect("revoke"),
        "another tenant cannot revoke the key"
    );
    assert!(
        store
            .api_key_revoke("acme", "fk_acme0001", t0() + ms(10), &audit())
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .api_key_revoke("acme", "fk_acme0001", t0() + ms(11), &audit())
            .await
            .expect("revoke"),
        "a key is revoked once"
    );
    assert_eq!(
        get("fk_acme0001").await.and_then(|k| k.revoked_at),
        Some(t0() + ms(10))
    );
    assert_eq!(get("fk_beta0001").await.and_then(|k| k.revoked_at), None);
}
