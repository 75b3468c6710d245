/** The in-process store against the store contract. */
import { MemoryStore } from '../../src/store/memory.js';
import { storeContract } from './contract.js';

storeContract('memory store', async (jobs) => ({ stores: [new MemoryStore(jobs)], done: async () => {} }), false, false);
