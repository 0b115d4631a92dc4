//! Command-line options of the harness.

use super::*;

pub(crate) const USAGE: &str = "usage: e2e [--dir DIR] [--host PATH] [--repeat R] [--cases] [--peers] [--cold] [--scaling] [--sizes] [--limited] [--devices] [--post] [--drizzle] [--ceiling] [--budget] [--large] [--huge] [--only NAME] [--quick] [--batch N] [--set STAGE.PARAM=VALUE]…";

pub(crate) struct Opts {
    pub(crate) dir: PathBuf,
    pub(crate) host: Option<PathBuf>,
    pub(crate) repeat: usize,
    pub(crate) cases: bool,
    pub(crate) peers: bool,
    pub(crate) cold: bool,
    pub(crate) scaling: bool,
    pub(crate) sizes: bool,
    pub(crate) limited: bool,
    pub(crate) devices: bool,
    pub(crate) post: bool,
    pub(crate) drizzle: bool,
    pub(crate) ceiling: bool,
    pub(crate) budget: bool,
    /// 30 × 6000×4000 16-bit against PSS (not part of "every section").
    pub(crate) large: bool,
    /// With `--large`, also 30 × 9576×6388.
    pub(crate) huge: bool,
    /// Only the reference captures whose name contains this.
    pub(crate) only: Option<String>,
    pub(crate) quick: bool,
    /// Captures per batch in the `--devices` batch rows.
    pub(crate) batch: usize,
    /// `--set STAGE.PARAM=VALUE` given to every jupiter run (A/B of a parameter).
    pub(crate) sets: Vec<String>,
}

pub(crate) fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        dir: PathBuf::from("target/e2e"),
        host: None,
        repeat: 3,
        cases: false,
        peers: false,
        cold: false,
        scaling: false,
        sizes: false,
        limited: false,
        devices: false,
        post: false,
        drizzle: false,
        ceiling: false,
        budget: false,
        large: false,
        huge: false,
        only: None,
        quick: false,
        batch: 5,
        sets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => o.dir = it.next().ok_or("--dir needs a value")?.into(),
            "--host" => o.host = Some(it.next().ok_or("--host needs a value")?.into()),
            "--repeat" => {
                o.repeat = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .ok_or("--repeat needs a positive integer")?
            }
            "--cases" => o.cases = true,
            "--peers" => o.peers = true,
            "--cold" => o.cold = true,
            "--scaling" => o.scaling = true,
            "--sizes" => o.sizes = true,
            "--limited" => o.limited = true,
            "--devices" => o.devices = true,
            "--post" => o.post = true,
            "--drizzle" => o.drizzle = true,
            "--ceiling" => o.ceiling = true,
            "--budget" => o.budget = true,
            "--large" => o.large = true,
            "--huge" => (o.large, o.huge) = (true, true),
            "--set" => o
                .sets
                .push(it.next().ok_or("--set needs STAGE.PARAM=VALUE")?.clone()),
            "--only" => o.only = Some(it.next().ok_or("--only needs a value")?.clone()),
            "--quick" => o.quick = true,
            "--batch" => {
                o.batch = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&b: &usize| b >= 1)
                    .ok_or("--batch needs a count of at least 1")?
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if !(o.cases
        || o.peers
        || o.cold
        || o.scaling
        || o.sizes
        || o.limited
        || o.devices
        || o.post
        || o.drizzle
        || o.ceiling
        || o.budget
        || o.large)
    {
        (o.cases, o.peers, o.cold, o.scaling, o.sizes, o.limited) =
            (true, true, true, true, true, true);
    }
    if o.peers {
        o.cases = true;
    }
    Ok(o)
}
