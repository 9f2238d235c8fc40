import type { Page } from './dom';
import { jobPage } from './pages/job';
import { jobsPage } from './pages/jobs';
import { newJobPage } from './pages/newjob';
import './probe';

// Hash routes: #/ (jobs), #/new, #/jobs/{id}. The page is served at / by the API itself, so every URL is relative.
const main = document.getElementById('main')!;
let page: Page | undefined;

function route() {
  page?.dispose();
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const job = /^\/jobs\/([0-9a-f-]{36})$/i.exec(path);
  if (job) page = jobPage(main, job[1]);
  else if (path === '/new') page = newJobPage(main, (hash) => { location.hash = hash; });
  else page = jobsPage(main, new URLSearchParams(query ?? ''));
  document.title = `${main.querySelector('h1')?.textContent ?? 'Jobs'} · TrainingService`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('header nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === `#${path}`);
  }
}

window.addEventListener('hashchange', route);
route();
