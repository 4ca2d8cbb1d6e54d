// A server component: the page is rendered (and prerendered at build) on
// the server, where importing segmint must not throw.
import Banner from "./banner";
import Tracker from "./tracker";

export default function Page() {
  return (
    <main>
      <h1>segmint with Next.js</h1>
      <Banner />
      <Tracker />
    </main>
  );
}
