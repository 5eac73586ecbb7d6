"""The evaluation home: eval/judge model loading, atomic result files, judges and the pairwise benchmarks."""
