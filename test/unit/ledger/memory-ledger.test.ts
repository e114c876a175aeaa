import t from 'tap';
import { createMemoryLedger } from '../../../src/ledger/ledger.ts';
import { ledgerContract } from './ledger-contract.ts';

await ledgerContract(t, () => createMemoryLedger());
