//! The crash soak: `cargo bench -p lifeboat-e2e --bench crashes` runs the
//! crash campaign (`lifeboat_e2e::campaign`) until `CRASH_FAULTS` faults
//! (default 300) were injected, or `CRASH_ROUNDS` rounds (default 400) ran,
//! and prints the reliability table of `docs/RELIABILITY.md` with one line
//! per figure. It exits non-zero when any invariant broke.

use lifeboat_e2e::campaign::{Campaign, run};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let seed = env("CRASH_SEED", 0x5eed_2026);
        let started = std::time::Instant::now();
        let mut campaign = Campaign::start(seed).await?;
        run(
            &mut campaign,
            env("CRASH_FAULTS", 300),
            env("CRASH_ROUNDS", 400),
        )
        .await?;
        println!("{}", campaign.table());
        let rows = campaign.rows.values();
        let sum = |f: fn(&lifeboat_e2e::campaign::Row) -> u64| rows.clone().map(f).sum::<u64>();
        println!("seed: {seed}");
        println!("faults injected: {} faults", campaign.injected());
        println!("operations run: {} runs", sum(|r| r.runs));
        println!(
            "completed backups that did not restore: {} backups",
            sum(|r| r.unrestorable)
        );
        println!("repositories damaged: {} checks", sum(|r| r.damaged));
        println!("operations left stuck: {} checks", sum(|r| r.stuck));
        println!("duration: {:.0} s", started.elapsed().as_secs_f64());
        for problem in &campaign.problems {
            println!("problem: {problem}");
        }
        anyhow::ensure!(
            campaign.problems.is_empty(),
            "{} invariants broke",
            campaign.problems.len()
        );
        Ok(())
    })
}
