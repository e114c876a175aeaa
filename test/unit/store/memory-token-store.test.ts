import t from 'tap';
import { createMemoryTokenStore } from '../../../src/store/memory-token-store.ts';
import { tokenStoreContract } from './fixtures/token-store-contract.ts';

await tokenStoreContract(t, () => createMemoryTokenStore());
