// Owns: loading TypeBox, the schema library behind every configuration file's validation. Its
// CommonJS build is loaded, not its ES modules: those are some 270 files, and each one goes through
// the TypeScript loader's hooks (tsx runs them on a thread of their own, one round trip per module),
// which cost every process that reads a config — each CLI verb, the gateway, each test file — most
// of a second at start; the CommonJS build loads in a fraction of that. Same API, same types.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const { Type } = require('@sinclair/typebox') as typeof import('@sinclair/typebox');
export const { TypeCompiler } = require('@sinclair/typebox/compiler') as typeof import('@sinclair/typebox/compiler');
export const { ValueErrorType } = require('@sinclair/typebox/errors') as typeof import('@sinclair/typebox/errors');
export type { Static, TSchema } from '@sinclair/typebox';
export type { TypeCheck } from '@sinclair/typebox/compiler';
