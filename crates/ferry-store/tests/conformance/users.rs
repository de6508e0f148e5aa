//! Users in the conformance suite: a name taken once, a role per tenant, sessions found by
//! their token's hash with the user's role now, and ended when the password changes, the
//! role is taken away or the user removed; expired sessions pruned.

use ferry_store::{Store, UserRow, UserSessionRow};

use super::{audit, ms, t0};

fn session(token: u8, user: &str, tenant: &str) -> UserSessionRow {
    UserSessionRow {
        token_hash: vec![token; 32],
        user_name: user.into(),
        tenant_id: tenant.into(),
        created_at: t0(),
        expires_at: t0() + ms(60_000),
        last_seen_at: t0(),
    }
}

pub(super) async fn users_hold_roles_per_tenant_and_sessions_end_with_them(store: Store) {
    let ana = UserRow {
        name: "ana@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: t0(),
        password_changed_at: t0(),
    };
    assert!(store.user_insert(&ana, &audit()).await.expect("insert"));
    assert!(!store.user_insert(&ana, &audit()).await.expect("taken"));
    assert_eq!(
        store.user_get(&ana.name).await.expect("get"),
        Some(ana.clone())
    );
    assert!(
        !store
            .user_role_set("nobody", "acme", "admin", t0(), &audit())
            .await
            .expect("no such user")
    );
    for (tenant, role) in [("acme", "admin"), ("beta", "viewer"), ("beta", "editor")] {
        assert!(
            store
                .user_role_set(&ana.name, tenant, role, t0(), &audit())
                .await
                .expect("role")
        );
    }
    assert_eq!(
        store.user_roles(&ana.name).await.expect("roles"),
        [
            ("acme".to_owned(), "admin".to_owned()),
            ("beta".to_owned(), "editor".to_owned())
        ]
    );
    let listed = store.user_list("beta").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].0.name.as_str(), listed[0].1.as_str()),
        (ana.name.as_str(), "editor")
    );
    assert!(store.user_list("gamma").await.expect("list").is_empty());

    for (token, tenant) in [(1, "acme"), (2, "beta"), (3, "beta")] {
        store
            .user_session_insert(&session(token, &ana.name, tenant), &audit())
            .await
            .expect("session");
    }
    let (found, role) = store
        .user_session_get(&[1; 32])
        .await
        .expect("get")
        .expect("the acme session");
    assert_eq!((found.tenant_id.as_str(), role.as_str()), ("acme", "admin"));
    assert!(
        store
            .user_session_get(&[9; 32])
            .await
            .expect("get")
            .is_none()
    );

    // The role in beta taken away: beta's sessions end, acme's stays.
    assert!(
        store
            .user_role_remove(&ana.name, "beta", &audit())
            .await
            .expect("remove")
    );
    assert!(
        !store
            .user_role_remove(&ana.name, "beta", &audit())
            .await
            .expect("again")
    );
    assert!(
        store
            .user_session_get(&[2; 32])
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .user_session_get(&[1; 32])
            .await
            .expect("get")
            .is_some()
    );

    // A new password ends every session.
    assert!(
        store
            .user_set_password(&ana.name, "$argon2id$new", t0() + ms(5), &[audit()])
            .await
            .expect("passwd")
    );
    assert!(
        store
            .user_session_get(&[1; 32])
            .await
            .expect("get")
            .is_none()
    );
    let changed = store.user_get(&ana.name).await.expect("get").expect("ana");
    assert_eq!(
        (changed.password_hash.as_str(), changed.password_changed_at),
        ("$argon2id$new", t0() + ms(5))
    );

    // Sessions expire; logging out ends one.
    store
        .user_session_insert(&session(4, &ana.name, "acme"), &audit())
        .await
        .expect("session");
    store
        .user_session_insert(
            &UserSessionRow {
                expires_at: t0() + ms(1),
                ..session(5, &ana.name, "acme")
            },
            &audit(),
        )
        .await
        .expect("short session");
    assert_eq!(
        store
            .user_sessions_prune(t0() + ms(10))
            .await
            .expect("prune"),
        1
    );
    assert!(store.user_session_delete(&[4; 32]).await.expect("logout"));
    assert!(!store.user_session_delete(&[4; 32]).await.expect("twice"));

    store
        .user_session_insert(&session(6, &ana.name, "acme"), &audit())
        .await
        .expect("session");
    assert!(
        store
            .user_delete(&ana.name, &[audit()])
            .await
            .expect("delete")
    );
    assert!(
        !store
            .user_delete(&ana.name, &[audit()])
            .await
            .expect("again")
    );
    assert!(store.user_get(&ana.name).await.expect("get").is_none());
    assert!(store.user_roles(&ana.name).await.expect("roles").is_empty());
    assert!(
        store
            .user_session_get(&[6; 32])
            .await
            .expect("get")
            .is_none()
    );
}
