// The README's main command (`./gantry demo`): the progressive-rollout demo of examples/orders-service. Arguments
// pass through (`./gantry demo --help`).
await import('../examples/orders-service/demo/main.ts');
