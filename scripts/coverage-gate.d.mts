// Types of scripts/coverage-gate.mjs (plain JavaScript: scripts/run-tests.mjs runs without tsx).
export declare const ROOT: string;
export declare function coverageRunDir(root?: string, id?: number): string;
export declare function removeStaleRuns(root?: string): void;
export declare function c8Report(opts: { config: string; tempDirectory: string; cwd?: string; check?: boolean; reportDir?: string }): { status: number; output: string };
export declare function selectDumps(from: string, to: string, marker: string): number;
export declare function runCoverageGate(dir: string, opts?: { check?: boolean; log?: (s: string) => void; reportDir?: string }): boolean;
