//! `ferry user add|passwd|rm|list`: the operator's users, on the server's database. A
//! password is asked for on the terminal (twice, not echoed) or read as one line from
//! stdin with `--password-stdin`; it never appears on the command line.

use std::{io::BufRead, path::Path, process::ExitCode};

use anyhow::{Context, Result, bail};
use ferry_core::{
    Secret, SystemClock,
    identity::{UserCreateRequest, UserList},
};
use ferry_server::app::Users;

use crate::cli::{PasswordArgs, UserArgs, UserCommand};
use crate::identity::{CLI_ACTOR, open, operator, print_json};

/// The password, from stdin or the terminal.
fn password(how: &PasswordArgs) -> Result<Secret> {
    if how.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        return Ok(Secret::new(line.trim_end_matches(['\r', '\n'])));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no terminal to ask for the password on: give it on stdin with --password-stdin");
    }
    let first = rpassword::prompt_password("password: ").context("reading the password")?;
    let again = rpassword::prompt_password("again: ").context("reading the password")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(Secret::new(first))
}

pub async fn user(args: UserArgs, config: Option<&Path>) -> Result<ExitCode> {
    let (store, hasher) = open(&args.db, config).await?;
    let users = Users::new(&store, &SystemClock, &hasher);
    let json = args.db.json;
    let result = async {
        match args.command {
            UserCommand::Add {
                name,
                tenant,
                role,
                password: how,
            } => {
                let who = operator(tenant.as_deref())?;
                let made = if users.exists(&name).await? {
                    users.grant(&who, &name, role).await?
                } else {
                    let req = UserCreateRequest {
                        name,
                        password: password(&how)?,
                        role,
                    };
                    users.create(&who, req).await?
                };
                if json {
                    print_json(&made)?;
                } else {
                    println!("{}", made.name);
                }
            }
            UserCommand::Passwd {
                name,
                password: how,
            } => {
                users
                    .set_password(CLI_ACTOR, &name, password(&how)?)
                    .await?
            }
            UserCommand::Rm { name, tenant } => match tenant {
                Some(tenant) => users.remove(&operator(Some(&tenant))?, &name).await?,
                None => users.delete(CLI_ACTOR, &name).await?,
            },
            UserCommand::List { tenant } => {
                let list = users.list(&operator(tenant.as_deref())?.tenant).await?;
                if json {
                    print_json(&UserList { users: list })?;
                } else {
                    for u in list {
                        println!("{}\t{}\t{}", u.name, u.role, u.created_at.to_rfc3339());
                    }
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}
