//! A short crash campaign (`lifeboat_e2e::campaign`): `lifeboat demo` on
//! Garage behind the fault proxy, killed at random moments of backups,
//! restores and deletions and started again, with storage faults between;
//! every invariant of `docs/RELIABILITY.md` checked after each. The soak is
//! `cargo bench -p lifeboat-e2e --bench crashes`.

use lifeboat_e2e::campaign::{Campaign, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_faulted_operations_leave_every_completed_backup_restorable()
-> anyhow::Result<()> {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let mut campaign = Campaign::start(seed).await?;
    run(&mut campaign, u64::MAX, 7).await?;
    eprintln!("seed {seed}\n{}", campaign.table());
    assert!(campaign.injected() >= 6, "{}", campaign.table());
    assert!(
        campaign.problems.is_empty(),
        "{}\n{:#?}",
        campaign.table(),
        campaign.problems
    );
    Ok(())
}
