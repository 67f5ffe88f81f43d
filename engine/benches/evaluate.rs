//! Benchmarks: (a) parse and evaluate the TorClient event against the shipped rules,
//! (b) the same against 1,000 generated rules over 50 finding types, (c) load and compile
//! those 1,000 rules.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use cordon_engine::registry::{ActionCatalog, ActionSpec, ParamIssue, ParamStage};
use cordon_engine::source::SourceFile;
use cordon_engine::{EvalOptions, Input, RuleSet};
use criterion::{Criterion, criterion_group, criterion_main};

/// The allocator the `cordon` and `bootstrap` binaries install, so that its cost is measured.
#[global_allocator]
static ALLOCATOR: cordon_engine::memory::CountingAllocator =
    cordon_engine::memory::CountingAllocator;

/// Accepts any parameters, so that benchmarks measure the engine and not the actions.
struct AnyParams(&'static str);

impl ActionSpec for AnyParams {
    fn name(&self) -> &'static str {
        self.0
    }

    fn validate(&self, _params: &serde_json::Value, _stage: ParamStage) -> Vec<ParamIssue> {
        Vec::new()
    }

    fn permissions(&self) -> &'static [&'static str] {
        &[]
    }
}

struct Catalog([AnyParams; 4]);

impl ActionCatalog for Catalog {
    fn get(&self, name: &str) -> Option<&dyn ActionSpec> {
        self.0
            .iter()
            .find(|spec| spec.0 == name)
            .map(|spec| spec as &dyn ActionSpec)
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|spec| spec.0).collect()
    }
}

fn catalog() -> Arc<dyn ActionCatalog> {
    Arc::new(Catalog([
        AnyParams("isolate"),
        AnyParams("tag"),
        AnyParams("snapshot"),
        AnyParams("release"),
    ]))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// 1,000 rules over 50 finding types, each with conditions, a `when` on every fifth rule
/// and templated actions. The types are the known EC2 types, then made-up types of another
/// resource, so that compiling them gives no unknown-type warnings.
fn generated_rules() -> String {
    const TOR_CLIENT: &str = "UnauthorizedAccess:EC2/TorClient";
    let others: Vec<&str> = cordon_engine::fixture::supported_types()
        .map(|info| info.finding_type)
        .filter(|finding_type| *finding_type != TOR_CLIENT)
        .collect();
    let mut text = String::from("env: [QUARANTINE_SG]\nrules:\n");
    for index in 0..1000 {
        let finding_type = match index % 50 {
            0 => TOR_CLIENT.to_owned(),
            slot => others.get(slot - 1).map_or_else(
                || format!("Generated:Bench/Type{slot}"),
                |known| (*known).to_owned(),
            ),
        };
        text.push_str(&format!(
            "  - id: rule-{index}\n    match:\n      type: \"{finding_type}\"\n      resource: Instance\n      all:\n        - {{ path: \"$.severity\", gte: {} }}\n      none:\n        - {{ path: \"$.service.resourceRole\", equals: TARGET }}\n",
            index % 9
        ));
        if index % 5 == 0 {
            text.push_str("    when: 'finding.service.count >= 1'\n");
        }
        text.push_str(
            "    actions:\n      - isolate: { security_group: \"${env.QUARANTINE_SG}\" }\n      - tag: { tags: { \"cordon:finding-id\": \"${finding.id}\" } }\n",
        );
    }
    text
}

fn bound(mut rules: RuleSet) -> RuleSet {
    if rules
        .bind_env(|_| Some("sg-0123456789abcdef0".to_owned()))
        .is_err()
    {
        std::process::exit(1);
    }
    rules
}

fn benches(criterion: &mut Criterion) {
    let event = std::fs::read(root().join("tests/fixtures/tor-client.json")).unwrap_or_default();
    let shipped = match RuleSet::load(&[root().join("rules")], catalog()) {
        Ok(rules) => bound(rules),
        Err(error) => {
            eprintln!("cannot load the shipped rules: {error}");
            std::process::exit(1);
        }
    };
    let evaluate = |rules: &RuleSet| {
        let Ok(Input::Finding(finding)) = cordon_engine::finding::parse(black_box(&event)) else {
            std::process::exit(1);
        };
        rules.evaluate(&finding, EvalOptions::default())
    };
    if evaluate(&shipped).matched.is_empty() {
        eprintln!("the shipped rules do not match the TorClient event");
        std::process::exit(1);
    }
    criterion.bench_function("a_tor_client_shipped_rules", |bencher| {
        bencher.iter(|| evaluate(&shipped))
    });

    let generated_text = generated_rules();
    let load_generated = || {
        RuleSet::from_sources(
            vec![SourceFile::new("generated.yaml", generated_text.clone())],
            catalog(),
        )
    };
    let generated = match load_generated() {
        Ok(rules) => bound(rules),
        Err(diagnostics) => {
            eprintln!("{}", diagnostics.render());
            std::process::exit(1);
        }
    };
    if evaluate(&generated).matched.len() != 20 {
        eprintln!("the generated rules should match 20 times");
        std::process::exit(1);
    }
    criterion.bench_function("b_tor_client_1000_rules", |bencher| {
        bencher.iter(|| evaluate(&generated))
    });

    let mut group = criterion.benchmark_group("c_compile");
    group.sample_size(10);
    group.bench_function("load_1000_rules", |bencher| {
        bencher.iter(|| load_generated().map(|rules| rules.rules().len()))
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
