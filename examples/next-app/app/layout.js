export const metadata = { title: "segmint with Next.js" };

export default function RootLayout({ children }) {
  return (
    <html lang="en" data-bundler="next">
      <body>{children}</body>
    </html>
  );
}
